import { bytesToHex, stringToHex, type Hex } from 'viem'
import { describe, expect, test } from 'vitest'
import { decodePreferences, encodePreferences, maxPreferencesBytes } from './preferences.js'

const json = (x: unknown) => stringToHex(JSON.stringify(x))

describe('decodePreferences', () => {
  test.each<[string, Hex, unknown]>([
    ['empty bytes', '0x', {}],
    ['empty object', json({}), {}],
    ['every key', json({ regions: ['eu-west-1', 'us'], highAvailability: true, spotAllowed: false, vcpu: 2, memoryGiB: 4.5, storageGiB: 0, gpuModel: 'A100' }),
      { regions: ['eu-west-1', 'us'], highAvailability: true, spotAllowed: false, vcpu: 2, memoryGiB: 4.5, storageGiB: 0, gpuModel: 'A100' }],
    ['whitespace around JSON', stringToHex(' {"vcpu": 1} \n'), { vcpu: 1 }],
  ])('default: %s', (_, bytes, value) => {
    expect(decodePreferences(bytes)).toEqual({ ok: true, value })
  })

  test.each<[string, Hex, RegExp]>([
    ['invalid UTF-8', bytesToHex(new Uint8Array([0x7b, 0xff, 0xfe, 0x7d])), /not valid UTF-8/],
    ['not JSON', stringToHex('region=eu'), /not valid JSON/],
    ['JSON array', json(['eu']), /got an array, expected a JSON object/],
    ['JSON null', json(null), /got null, expected a JSON object/],
    ['JSON string', json('eu'), /expected a JSON object/],
    ['unknown key', json({ region: 'eu' }), /preferences\.region: unknown key/],
    ['negative number', json({ vcpu: -1 }), /preferences\.vcpu: got -1, expected a number >= 0/],
    ['number as string', json({ memoryGiB: '4' }), /preferences\.memoryGiB: got "4"/],
    ['boolean as string', json({ highAvailability: 'yes' }), /preferences\.highAvailability: got "yes", expected true or false/],
    ['regions not an array', json({ regions: 'eu' }), /preferences\.regions: got "eu"/],
    ['empty region name', json({ regions: [''] }), /preferences\.regions/],
    ['region with spaces', json({ regions: ['eu west'] }), /preferences\.regions/],
    ['empty gpu model', json({ gpuModel: '' }), /preferences\.gpuModel/],
    ['huge number is fine but NaN cannot be JSON', stringToHex('{"vcpu": NaN}'), /not valid JSON/],
    ['too large', stringToHex(`{"gpuModel":"${'a'.repeat(maxPreferencesBytes)}"}`), /bytes, at most 4096/],
    ['not hex', '0xzz' as Hex, /not hex/],
  ])('error: %s', (_, bytes, message) => {
    const r = decodePreferences(bytes)
    expect(r.ok).toBe(false)
    if (!r.ok) {
      expect(r.error).toMatch(message)
      expect(r.raw).toBe(bytes)
    }
  })

  test('behavior: every problem is reported at once', () => {
    const r = decodePreferences(json({ vcpu: -2, spotAllowed: 1, colour: 'red' }))
    expect(r.ok).toBe(false)
    if (!r.ok) {
      expect(r.error).toMatch(/preferences\.vcpu/)
      expect(r.error).toMatch(/preferences\.spotAllowed/)
      expect(r.error).toMatch(/preferences\.colour/)
    }
  })
})

describe('encodePreferences', () => {
  test('default: round trip, undefined keys dropped', () => {
    const p = { regions: ['eu'], highAvailability: true, vcpu: 2, memoryGiB: undefined }
    const bytes = encodePreferences(p)
    expect(decodePreferences(bytes)).toEqual({ ok: true, value: { regions: ['eu'], highAvailability: true, vcpu: 2 } })
  })

  test('args: empty preferences encode as empty bytes', () => {
    expect(encodePreferences({})).toBe('0x')
  })
})
