import { describe, expect, test } from 'vitest'
import { argText } from './tx.js'

describe('argText', () => {
  test('default: scalars as text, structs and arrays as JSON with bigints as decimals, never [object Object]', () => {
    expect(argText(5n)).toBe('5')
    expect(argText('0xab')).toBe('0xab')
    const s = argText([{ kind: 0, uri: 'http://x', digest: '0x01' }])
    expect(s).toBe('[{"kind":0,"uri":"http://x","digest":"0x01"}]')
    expect(argText({ vcpuMilli: 250n, ports: [8080] })).toBe('{"vcpuMilli":"250","ports":[8080]}')
    expect(argText({ long: 'x'.repeat(500) })).toHaveLength(200)
    expect(argText({ a: 1 })).not.toContain('[object Object]')
  })
})
