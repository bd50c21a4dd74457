import fc from 'fast-check'
import { describe, expect, test } from 'vitest'
import { accruedFromFacts, factsFromOnchain, paidUntilFromFacts, paidUntilOf, rollingSlice, verifySlice, type OnchainFacts } from './paymentFacts.js'

const active: OnchainFacts = { state: 'active', tier: 1, ratePerHour: 3_600_000n, balance: 1_000_000n, settledAt: 1000n, endsAt: 5000n }

describe('payment facts', () => {
  test('default: paid-until and accrual as the escrow computes them (rounded down, capped at 2^64-1)', () => {
    const f = factsFromOnchain(active)
    expect(paidUntilFromFacts(f)).toBe(2000n)
    expect(f.paidUntil).toBe('2000')
    expect(accruedFromFacts(f, 1500n)).toBe(500_000n)
    expect(accruedFromFacts(f, 999n)).toBe(0n)
    expect(accruedFromFacts(f, 9000n)).toBe(1_000_000n) // capped by the balance
    expect(accruedFromFacts({ ...f, endsAt: '1100' }, 9000n)).toBe(100_000n) // stops at the TTL
    expect(paidUntilOf(10n, 1000n, 7n)).toBe(7n + 36n)
    expect(paidUntilOf(2n ** 128n - 1n, 1n, 2n ** 63n)).toBe(2n ** 64n - 1n)
    expect(paidUntilFromFacts({ ...f, onchainState: 'requested' })).toBe(0n)
    expect(paidUntilFromFacts({ ...f, onchainState: 'terminated' })).toBe(0n)
    expect(paidUntilFromFacts(undefined)).toBeUndefined()
    expect(paidUntilFromFacts({ onchainState: 'active', balance: '1' })).toBeUndefined()
  })

  test('behavior: verifySlice reports each differing fact, unknown services, and missing facts; agreement is empty', () => {
    const f = factsFromOnchain(active)
    expect(verifySlice([{ serviceId: '1', facts: f }], [active])).toEqual([])
    expect(
      verifySlice(
        [
          { serviceId: '1', facts: { ...f, balance: '999' } },
          { serviceId: '2', facts: f },
          { serviceId: '3', facts: undefined },
          { serviceId: '4', facts: { ...f, settledAt: '1' } },
        ],
        [active, undefined, { ...active, state: 'closed', balance: 0n }, { ...active, state: 'terminated', balance: 0n }],
      ),
    ).toEqual([
      { serviceId: '1', field: 'balance', record: '999', chain: '1000000' },
      { serviceId: '2', field: 'exists', record: 'active', chain: undefined },
      { serviceId: '3', field: 'onchainState', record: undefined, chain: 'closed' },
      { serviceId: '3', field: 'balance', record: undefined, chain: '0' },
      // an ended service: settledAt is not compared, only the state and the balance
      { serviceId: '4', field: 'onchainState', record: 'active', chain: 'terminated' },
      { serviceId: '4', field: 'balance', record: '1000000', chain: '0' },
    ])
    expect(verifySlice([{ serviceId: '5', facts: { ...f, tier: 2 } }], [active])).toEqual([{ serviceId: '5', field: 'tier', record: '2', chain: '1' }])
  })

  test('property: rolling slices of size k visit every id within ⌈n / k⌉ ticks (at most twice)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 1, max: 120 }), fc.integer({ min: 0, max: 1000 }), (n, k, start) => {
        const ids = Array.from({ length: n }, (_, i) => i)
        const seen = new Map<number, number>()
        let at = start
        const ticks = Math.ceil(n / k)
        for (let t = 0; t < ticks; t++) {
          const { slice, next } = rollingSlice(ids, at, k)
          expect(slice.length).toBe(Math.min(k, n))
          for (const id of slice) seen.set(id, (seen.get(id) ?? 0) + 1)
          at = next
        }
        if (n === 0) return
        expect(seen.size).toBe(n)
        // the last slice may wrap onto ids already seen in this round: at most twice
        expect([...seen.values()].every((v) => v === 1 || (v === 2 && n % k !== 0))).toBe(true)
      }),
      { numRuns: 500 },
    )
  })
})
