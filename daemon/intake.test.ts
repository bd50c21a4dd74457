import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, test } from 'vitest'
import { pino } from 'pino'
import { createTestCommon } from '../core/common.js'
import type { ChainEvent } from '../chain/events.js'
import { applyEvents, createCursorWriter, CursorMovedError, deploymentIdOf, pruneProcessed } from './intake.js'
import { createStore } from './store.js'
import { emptyState, transition } from './state.js'

const logger = pino({ level: 'silent' })
const operator = '0x' + '11'.repeat(20)
const meta = (n: number) => ({ chainId: 31337, blockNumber: BigInt(n), blockHash: `0x${'aa'.repeat(32)}` as const, txHash: `0x${n.toString(16).padStart(64, '0')}` as `0x${string}`, logIndex: 0 })
const initiated = (n: number, serviceId: bigint, op = operator): ChainEvent => ({
  ...meta(n),
  type: 'ServiceInitiated',
  serviceId,
  blueprintId: 1n,
  customer: `0x${'22'.repeat(20)}`,
  operator: op as `0x${string}`,
  tier: 0,
  preferences: { ok: true, value: { regions: ['eu'] } },
  ttlSeconds: 3600n,
  deposit: 1_000_000n,
  ratePerHour: 3_600_000n,
})

describe('applyEvents', () => {
  test('default: a request for this operator creates a service in requested', () => {
    const st = emptyState('op', 31337)
    const touched = applyEvents(st, [initiated(1, 7n)], { operator, chainId: 31337, logger })
    expect([...touched]).toEqual(['7'])
    const s = st.services['7']!
    expect(s).toMatchObject({ state: 'requested', deploymentId: 'bp-31337-7', deposit: '1000000', preferences: { regions: ['eu'] }, ledger: { paid: '1000000' } })
    expect(s.history).toHaveLength(1)
  })

  test('behavior: each event identity is acted on once', () => {
    const st = emptyState('op', 31337)
    const e = initiated(1, 7n)
    const pay: ChainEvent = { ...meta(2), type: 'PaymentReceived', serviceId: 7n, payer: `0x${'22'.repeat(20)}`, amount: 5n, balance: 1_000_005n, paidUntil: 0n, settledAt: 0n }
    applyEvents(st, [e, pay], { operator, chainId: 31337, logger })
    applyEvents(st, [e, pay, pay], { operator, chainId: 31337, logger })
    expect(st.services['7']!.ledger.paid).toBe('1000005')
    expect(Object.keys(st.processed)).toHaveLength(2)
  })

  test('behavior: an id the chain gives again after it forgot the request (deep reorg) is a new service; a live id is never taken over', () => {
    const st = emptyState('op', 31337)
    applyEvents(st, [initiated(1, 7n), initiated(2, 8n)], { operator, chainId: 31337, logger })
    // 7 vanished and was torn down; 8 still runs
    const gone = st.services['7']!
    for (const to of ['provisioning', 'active', 'terminating', 'closed'] as const) transition(gone, to, 'test')
    gone.reason = 'SERVICE_VANISHED'
    transition(st.services['8']!, 'provisioning', 'test')
    const again = { ...initiated(3, 7n), deposit: 2_000_000n }
    const touched = applyEvents(st, [again, initiated(4, 8n)], { operator, chainId: 31337, logger })
    expect([...touched]).toEqual(['7'])
    expect(st.services['7']).toMatchObject({ state: 'requested', deposit: '2000000', ledger: { paid: '2000000' } })
    expect(st.services['7']!.history).toHaveLength(1)
    expect(st.services['8']!.state).toBe('provisioning')
  })

  test('behavior: other operators’ requests are ignored', () => {
    const st = emptyState('op', 31337)
    applyEvents(st, [initiated(1, 8n, '0x' + '33'.repeat(20))], { operator, chainId: 31337, logger })
    expect(st.services).toEqual({})
  })

  test('behavior: undecodable preferences are kept as a problem for the refund', () => {
    const st = emptyState('op', 31337)
    const e = { ...initiated(1, 9n), preferences: { ok: false as const, error: 'not JSON', raw: '0xff' as const } }
    applyEvents(st, [e], { operator, chainId: 31337, logger })
    expect(st.services['9']!.problems).toEqual(['preferences: not JSON'])
  })

  test('behavior: termination moves a live service to terminating; ledger events add up', () => {
    const st = emptyState('op', 31337)
    applyEvents(st, [initiated(1, 7n)], { operator, chainId: 31337, logger })
    transition(st.services['7']!, 'provisioning', 'test')
    transition(st.services['7']!, 'active', 'test')
    applyEvents(
      st,
      [
        { ...meta(3), type: 'Withdrawn', serviceId: 7n, operator: operator as `0x${string}`, amount: 10n, balance: 90n, settledAt: 20n },
        { ...meta(4), type: 'Refunded', serviceId: 7n, customer: `0x${'22'.repeat(20)}`, amount: 90n, reason: 'CUSTOMER_TERMINATED' },
        { ...meta(5), type: 'ServiceTerminated', serviceId: 7n, by: `0x${'22'.repeat(20)}` },
      ],
      { operator, chainId: 31337, logger },
    )
    const s = st.services['7']!
    expect(s.state).toBe('terminating')
    expect(s.reason).toBe('CUSTOMER_TERMINATED')
    expect(s.ledger).toMatchObject({ withdrawn: '10', refunded: '90' })
  })

  test('behavior: payment events keep the facts paid-until is computed from, exactly as the escrow computes it', () => {
    const st = emptyState('op', 31337)
    const ctx = { operator, chainId: 31337, logger }
    applyEvents(st, [initiated(1, 7n)], ctx)
    expect(st.services['7']!.chain).toMatchObject({ onchainState: 'requested', balance: '1000000', ratePerHour: '3600000', tier: 0, paidUntil: '0', asOfBlock: '1' })
    applyEvents(st, [{ ...meta(2), type: 'ServiceActivated', serviceId: 7n, activatedAt: 1000n, endsAt: 4600n }], ctx)
    // 1,000,000 base units at 1,000 per second
    expect(st.services['7']!.chain).toMatchObject({ onchainState: 'active', settledAt: '1000', endsAt: '4600', paidUntil: '2000' })
    const payer = `0x${'22'.repeat(20)}` as const
    applyEvents(st, [{ ...meta(3), type: 'PaymentReceived', serviceId: 7n, payer, amount: 500_000n, balance: 1_000_000n, paidUntil: 2500n, settledAt: 1500n }], ctx)
    expect(st.services['7']!.chain).toMatchObject({ balance: '1000000', settledAt: '1500', paidUntil: '2500' })
    applyEvents(st, [{ ...meta(4), type: 'TierChanged', serviceId: 7n, tier: 1, ratePerHour: 7_200_000n, balance: 900_000n, settledAt: 1600n }], ctx)
    expect(st.services['7']).toMatchObject({ tierIndex: 1, chain: { tier: 1, ratePerHour: '7200000', balance: '900000', settledAt: '1600', paidUntil: '2050' } })
    applyEvents(st, [{ ...meta(5), type: 'Withdrawn', serviceId: 7n, operator: operator as `0x${string}`, amount: 600_000n, balance: 800_000n, settledAt: 1650n }], ctx)
    expect(st.services['7']!.chain).toMatchObject({ balance: '800000', settledAt: '1650', paidUntil: '2050' })
    applyEvents(
      st,
      [
        { ...meta(6), type: 'Refunded', serviceId: 7n, customer: payer, amount: 1n, reason: 'CUSTOMER_TERMINATED' },
        { ...meta(6), logIndex: 1, type: 'ServiceTerminated', serviceId: 7n, by: payer },
      ],
      ctx,
    )
    expect(st.services['7']!.chain).toMatchObject({ onchainState: 'terminated', balance: '0', paidUntil: '0' })
  })

  test.each<[string, Partial<ChainEvent & { type: 'ServiceInitiated' }>, RegExp]>([
    ['a TTL near 2^64', { ttlSeconds: 2n ** 64n - 1n }, /^ttl: 18446744073709551615 s is outside 1 \.\. 3153600000 s/],
    ['a TTL of 0', { ttlSeconds: 0n }, /^ttl: 0 s/],
    ['a deposit of 2^128', { deposit: 2n ** 128n }, /^deposit: 340282366920938463463374607431768211456 is outside/],
    ['a deposit of 0', { deposit: 0n }, /^deposit: 0/],
    ['a rate near 2^256', { ratePerHour: 2n ** 256n - 1n }, /^rate: \d+ per hour is outside/],
    ['a rate of 0', { ratePerHour: 0n }, /^rate: 0/],
    ['tier 3', { tier: 3 }, /^tier: got 3, expected 0 \(basic\)/],
    ['tier 255', { tier: 255 }, /^tier: 255 is outside 0 \.\. 15$/],
  ])('error: a request with %s is recorded as malformed (refunded before quoting)', (_, patch, problem) => {
    const st = emptyState('op', 31337)
    applyEvents(st, [{ ...initiated(1, 7n), ...patch } as ChainEvent], { operator, chainId: 31337, logger })
    const s = st.services['7']!
    expect(s.state).toBe('requested')
    expect(s.problems).toHaveLength(1)
    expect(s.problems![0]).toMatch(problem)
  })

  test('behavior: a paid-until beyond what a Date holds (2^64-1: the escrow saturates) is applied, not a crash', () => {
    const st = emptyState('op', 31337)
    applyEvents(st, [initiated(1, 7n)], { operator, chainId: 31337, logger })
    const pay: ChainEvent = { ...meta(2), type: 'PaymentReceived', serviceId: 7n, payer: `0x${'22'.repeat(20)}`, amount: 5n, balance: 5n, paidUntil: 2n ** 64n - 1n, settledAt: 0n }
    expect(() => applyEvents(st, [pay], { operator, chainId: 31337, logger })).not.toThrow()
    expect(st.services['7']!.ledger.paid).toBe('1000005')
  })

  test('error: illegal transitions throw', () => {
    const st = emptyState('op', 31337)
    applyEvents(st, [initiated(1, 7n)], { operator, chainId: 31337, logger })
    expect(() => transition(st.services['7']!, 'closed', 'x')).toThrow(/illegal transition requested -> closed/)
  })

  test('args: deployment ids are DNS-safe', () => {
    expect(deploymentIdOf(31337, 12345678901234567890n)).toMatch(/^[a-z0-9-]{1,63}$/)
  })

  test('behavior: identities far below the cursor are pruned, recent ones kept', () => {
    const st = emptyState('op', 31337)
    st.processed = { a: '10', b: '15000', c: '19999' }
    expect(pruneProcessed(st, 20_000n)).toBe(1)
    expect(Object.keys(st.processed)).toEqual(['b', 'c'])
  })

  test('behavior: pruning visits only what it prunes (identities are kept in delivery order)', () => {
    const st = emptyState('op', 31337)
    for (let b = 0; b < 50_000; b++) st.processed[`31337:0x${b.toString(16)}:0`] = String(b)
    let reads = 0
    st.processed = new Proxy(st.processed, { get: (t, k) => (reads++, Reflect.get(t, k)) })
    expect(pruneProcessed(st, 40_005n)).toBe(30_005)
    expect(reads).toBe(30_006) // the pruned ones and the first one kept
    expect(Object.keys(st.processed)).toHaveLength(19_995)
    reads = 0
    expect(pruneProcessed(st, 40_006n)).toBe(1)
    expect(reads).toBe(2)
  })
})

describe('createCursorWriter', () => {
  const at = (n: number) => ({ blockNumber: String(n), blockHash: `0x${n.toString(16).padStart(64, '0')}` })

  test('behavior: writes queued together commit in order with their cursors; one that fails takes every write queued after it down, and the next extends the saved cursor', async () => {
    const { common } = createTestCommon()
    const dir = mkdtempSync(join(tmpdir(), 'bpo-intake-'))
    const store = await createStore(common, { file: join(dir, 'state.sqlite'), operatorId: 'op', chainId: 31337 })
    try {
      const w = createCursorWriter(store)
      const ctx = { operator, chainId: 31337, logger }
      // three deliveries in flight at once: all three commit, the cursor is the last one's
      await Promise.all([1, 2, 3].map((n) => w.write(at(n), (st) => applyEvents(st, [initiated(n, BigInt(n))], ctx))))
      expect(store.read().cursor).toEqual(at(3))
      expect(Object.keys(store.read().services).sort()).toEqual(['1', '2', '3'])

      // the second of three fails: the third extends it and is refused; nothing after block 4 is saved
      const results = await Promise.allSettled([
        w.write(at(4), (st) => applyEvents(st, [initiated(4, 4n)], ctx)),
        w.write(at(5), () => {
          throw new Error('disk full')
        }),
        w.write(at(6), (st) => applyEvents(st, [initiated(6, 6n)], ctx)),
      ])
      expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'rejected'])
      expect((results[2] as PromiseRejectedResult).reason).toBeInstanceOf(CursorMovedError)
      expect(store.read().cursor).toEqual(at(4))
      expect(store.read().services['6']).toBeUndefined()

      // the follower reads again from block 4: the next write extends the saved cursor
      await w.write(at(6), (st) => applyEvents(st, [initiated(6, 6n)], ctx))
      expect(store.read().cursor).toEqual(at(6))
      expect(store.read().services['6']).toBeDefined()
    } finally {
      await store.close()
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
