import { describe, expect, test } from 'vitest'
import { ReasonCodes } from '../../core/errors.js'
import { bytes32ToReason, reasonToBytes32 } from './reason.js'

describe('reason', () => {
  test.each(ReasonCodes.map((c) => [c]))('default: %s round-trips through bytes32', (code) => {
    const b = reasonToBytes32(code)
    expect(b).toMatch(/^0x[0-9a-f]{64}$/)
    expect(bytes32ToReason(b)).toBe(code)
  })

  test('behavior: non-printable bytes come back as hex', () => {
    const b = `0x01${'00'.repeat(31)}` as const
    expect(bytes32ToReason(b)).toBe(b)
  })

  test('args: all zero is the empty reason', () => {
    expect(bytes32ToReason(`0x${'00'.repeat(32)}`)).toBe('')
  })
})
