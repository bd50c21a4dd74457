import { describe, expect, test } from 'vitest'
import { accrued, formatBaseUnits, paidUntil, toBaseUnits, tokenToUsd, usd, usdToTokenCeil } from './money.js'

describe('money', () => {
  test('default: base units round-trip', () => {
    expect(toBaseUnits('1.5', 6)).toBe(1_500_000n)
    expect(toBaseUnits('0.000001', 6)).toBe(1n)
    expect(formatBaseUnits(1_500_000n, 6)).toBe('1.5')
    expect(formatBaseUnits(-1n, 6)).toBe('-0.000001')
  })
  test('error: excess precision and garbage are refused', () => {
    expect(() => toBaseUnits('0.0000001', 6)).toThrow(/more than 6 decimals/)
    expect(() => toBaseUnits('1e3', 6)).toThrow(/not a token amount/)
    expect(() => usd('abc')).toThrow(/not a decimal amount/)
  })
  test('behavior: USD conversions are exact and round up what the operator charges', () => {
    expect(tokenToUsd(1_234_567n, 6, usd('1')).toString()).toBe('1.234567')
    expect(usdToTokenCeil(usd('0.0000001'), 6, usd('1'))).toBe(1n)
    expect(usd('0.1').plus(usd('0.2')).toString()).toBe('0.3')
  })
  test('behavior: escrow arithmetic rounds in the customer’s favour', () => {
    // 1 token/hour = 1_000_000 units/hour; 1 second accrues 277.7… → 277
    expect(accrued(10_000_000n, 1_000_000n, 100n, 101n)).toBe(277n)
    expect(accrued(100n, 1_000_000n, 100n, 200n)).toBe(100n) // capped by the balance
    expect(accrued(100n, 1_000_000n, 100n, 50n)).toBe(0n)
    expect(paidUntil(1_000_000n, 1_000_000n, 1000n)).toBe(4600n)
    expect(paidUntil(1n, 3_600_000n, 0n)).toBe(0n)
  })
})
