import { describe, expect, test } from 'vitest'
import { pino } from 'pino'
import type { ChainEvent } from '../chain/events.js'
import { applyEvents, deploymentIdOf, pruneProcessed } from './intake.js'
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
    const pay: ChainEvent = { ...meta(2), type: 'PaymentReceived', serviceId: 7n, payer: `0x${'22'.repeat(20)}`, amount: 5n, balance: 5n, paidUntil: 100n }
    applyEvents(st, [e, pay], { operator, chainId: 31337, logger })
    applyEvents(st, [e, pay, pay], { operator, chainId: 31337, logger })
    expect(st.services['7']!.ledger.paid).toBe('1000005')
    expect(Object.keys(st.processed)).toHaveLength(2)
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
        { ...meta(3), type: 'Withdrawn', serviceId: 7n, operator: operator as `0x${string}`, amount: 10n },
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
})
