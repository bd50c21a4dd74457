/**
 * A service's ledger at `closed` equals what the chain paid out: the payouts of the daemon's own withdraw and refund
 * transactions are counted from their receipts at once, and the same events, when the follower delivers them after
 * the confirmations, are not counted again (nor the other way round).
 */
import { pino } from 'pino'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import type { ChainEvent } from '../chain/events.js'
import { createEscrowClient, type EscrowClient } from '../chain/evm/escrow.js'
import type { Payout } from '../chain/evm/payouts.js'
import { createTestChain, type TestChain } from '../test/helpers/anvil.js'
import { applyEvents } from './intake.js'
import { countPayout, recordPayouts } from './payouts.js'
import { emptyState, type ServiceRecord } from './state.js'

const logger = pino({ level: 'silent' })
const operator = '0x' + '11'.repeat(20)
const tx = (n: number) => `0x${n.toString(16).padStart(64, '0')}` as `0x${string}`

function stateWithService() {
  const st = emptyState('op', 31337)
  const init: ChainEvent = {
    chainId: 31337,
    blockNumber: 1n,
    blockHash: `0x${'aa'.repeat(32)}`,
    txHash: tx(1),
    logIndex: 0,
    type: 'ServiceInitiated',
    serviceId: 7n,
    blueprintId: 1n,
    customer: `0x${'22'.repeat(20)}`,
    operator: operator as `0x${string}`,
    tier: 0,
    preferences: { ok: true, value: {} },
    ttlSeconds: 3600n,
    deposit: 1_000_000n,
    ratePerHour: 3_600_000n,
  }
  applyEvents(st, [init], { operator, chainId: 31337, logger })
  return st
}

const payouts: Payout[] = [
  { kind: 'Withdrawn', amount: 300n, txHash: tx(9), logIndex: 2, blockNumber: 9n },
  { kind: 'Refunded', amount: 700n, txHash: tx(9), logIndex: 3, blockNumber: 9n },
]
const asEvents = (ps: Payout[]): ChainEvent[] =>
  ps.map((p): ChainEvent =>
    p.kind === 'Withdrawn'
      ? { chainId: 31337, blockNumber: p.blockNumber, blockHash: `0x${'bb'.repeat(32)}`, txHash: p.txHash, logIndex: p.logIndex, type: 'Withdrawn', serviceId: 7n, operator: operator as `0x${string}`, amount: p.amount, balance: 0n, settledAt: 0n }
      : { chainId: 31337, blockNumber: p.blockNumber, blockHash: `0x${'bb'.repeat(32)}`, txHash: p.txHash, logIndex: p.logIndex, type: 'Refunded', serviceId: 7n, customer: `0x${'22'.repeat(20)}`, amount: p.amount, reason: 'TTL_REACHED' },
  )
const ledgerOf = (r: ServiceRecord) => ({ withdrawn: r.ledger.withdrawn, earned: r.ledger.earned, refunded: r.ledger.refunded })

describe('payouts: counted once', () => {
  test('default: the receipt first, then the follower delivers the same events: counted once', () => {
    const st = stateWithService()
    expect(recordPayouts(st.services['7']!, 31337, payouts)).toBe(2)
    expect(ledgerOf(st.services['7']!)).toEqual({ withdrawn: '300', earned: '300', refunded: '700' })
    applyEvents(st, asEvents(payouts), { operator, chainId: 31337, logger })
    expect(ledgerOf(st.services['7']!)).toEqual({ withdrawn: '300', earned: '300', refunded: '700' })
    expect(recordPayouts(st.services['7']!, 31337, payouts)).toBe(0)
  })

  test('behavior: the follower first (low confirmations), then the receipt: counted once', () => {
    const st = stateWithService()
    applyEvents(st, asEvents(payouts), { operator, chainId: 31337, logger })
    expect(recordPayouts(st.services['7']!, 31337, payouts)).toBe(0)
    expect(ledgerOf(st.services['7']!)).toEqual({ withdrawn: '300', earned: '300', refunded: '700' })
  })

  test('behavior: a payout the daemon did not send (another withdrawal) is counted from its event alone', () => {
    const st = stateWithService()
    recordPayouts(st.services['7']!, 31337, payouts)
    applyEvents(st, asEvents([{ kind: 'Withdrawn', amount: 5n, txHash: tx(10), logIndex: 0, blockNumber: 10n }]), { operator, chainId: 31337, logger })
    expect(ledgerOf(st.services['7']!)).toEqual({ withdrawn: '305', earned: '305', refunded: '700' })
    expect(countPayout(st.services['7']!, `31337:${tx(10)}:0`, 'Withdrawn', 5n)).toBe(false)
  })
})

describe('payouts: from real receipts (anvil)', () => {
  let c: TestChain
  let escrow: EscrowClient
  beforeAll(async () => {
    c = await createTestChain()
    escrow = createEscrowClient(c.common, { publicClient: c.publicClient, walletClient: c.wallets.operator, escrow: c.addresses.escrow, registry: c.addresses.registry })
  })
  afterAll(async () => {
    await c?.stop()
  })

  test('behavior: withdraw + refund receipts give exactly what the operator and the customer received', { timeout: 60_000 }, async () => {
    const bp = await c.registerBlueprint()
    const { serviceId } = await c.requestService({ blueprintId: bp, deposit: 3_600_000n })
    await escrow.activate(serviceId)
    const s = (await escrow.getService(serviceId))!
    const op0 = await c.customer.balanceOf(c.operatorAddress)
    const cu0 = await c.customer.balanceOf()
    // accrued at the latest block, so the client sees something to withdraw
    await c.mineAt(s.settledAt + 100n)
    await c.testClient.setNextBlockTimestamp({ timestamp: s.settledAt + 120n })
    const w = await escrow.withdraw(serviceId)
    if (w === 'nothing') throw new Error('expected a withdrawal')
    await c.testClient.setNextBlockTimestamp({ timestamp: s.settledAt + 300n })
    const r = await escrow.refund(serviceId, 'TTL_REACHED')
    if (r === 'already') throw new Error('expected a refund')
    expect(w.payouts.map((p) => p.kind)).toEqual(['Withdrawn'])
    expect(r.payouts.map((p) => p.kind).sort()).toEqual(['Refunded', 'Withdrawn'])
    const st = stateWithService()
    const rec = st.services['7']!
    recordPayouts(rec, c.chainId, [...w.payouts, ...r.payouts])
    const paidToOperator = (await c.customer.balanceOf(c.operatorAddress)) - op0
    const paidToCustomer = (await c.customer.balanceOf()) - cu0
    expect(paidToOperator).toBe(300_000n)
    expect(rec.ledger.withdrawn).toBe(paidToOperator.toString())
    expect(rec.ledger.refunded).toBe(paidToCustomer.toString())
    expect(BigInt(rec.ledger.withdrawn) + BigInt(rec.ledger.refunded)).toBe(3_600_000n)
  })
})
