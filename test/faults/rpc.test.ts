/**
 * Fault suite, RPC: the daemon reads and sends through a proxy (test/faults/rpcFaults.ts) in front of a real anvil
 * while the proxy fails in each way hosted RPCs fail — outage, connection resets, 429 with Retry-After, answers past
 * the timeout, a node on another chain — each around a lifecycle action (a request, a top-up, a termination, the
 * daemon's own withdraw and refund). While the fault lasts nothing is invented; once it clears every action is acted
 * on exactly once, and at the end the books equal the chain's payouts. Figures go into the fault line.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { processesOf, startInProcess, startStack, waitFor, type Stack } from '../helpers/stack.js'
import { recordFigures } from './figures.js'
import { startRpcFaultProxy, type RpcFault, type RpcFaultProxy } from './rpcFaults.js'

const RATE = 1000n // base units per second (the demo blueprint's basic tier)
const DEPOSIT = 3_600n * RATE
const TOP_UP = 600n * RATE
const HOLD_MS = 3_000

const figures = { rpc_faults: 0, leaked: 0, duplicates: 0, double_refunds: 0, missed_events: 0, ledger_mismatch: 0 }

describe('faults: RPC failures around every lifecycle action', () => {
  let stack: Stack
  let proxy: RpcFaultProxy
  let d: Awaited<ReturnType<typeof startInProcess>> | undefined
  beforeAll(async () => {
    stack = await startStack()
    proxy = await startRpcFaultProxy(stack.chain.rpcUrl, { slowMs: 4_000 })
    ;(stack.doc.chain as Record<string, unknown>).rpc_url = proxy.url
    ;(stack.doc.chain as Record<string, unknown>).request_timeout_ms = 1_500
    d = await startInProcess(stack)
  })
  afterAll(async () => {
    await d?.stop()
    await proxy?.close()
    await stack?.stop()
    console.log(`rpc faults: ${figures.rpc_faults} episodes, ${proxy?.spoiled} requests spoiled`)
    recordFigures('rpc', figures)
  })

  /** `act` happens while the RPC fails with `fault`; `during` holds while it lasts; then the RPC heals. */
  async function episode(fault: RpcFault, act: () => Promise<unknown>, during: () => void) {
    const before = proxy.spoiled
    await proxy.set(fault)
    try {
      // a wrong chain is known at the follower's next poll (every poll asks): act once the daemon has been told
      if (fault === 'wrong-chain') await waitFor('the daemon sees the node on another chain', () => proxy.spoiled > before && d!.daemon.manager.context.chainTrusted?.() === false, 10_000, 20)
      await act()
      await new Promise((r) => setTimeout(r, HOLD_MS))
      during()
    } finally {
      await proxy.set('pass')
    }
    figures.rpc_faults++
  }

  async function books(id: bigint, paid: bigint) {
    const refunds = await stack.refunds(id)
    figures.double_refunds += Math.max(0, refunds.length - 1)
    expect(refunds).toHaveLength(1)
    const withdrawn = (await stack.events(id, 'Withdrawn')).reduce((a, e) => a + (e.amount as bigint), 0n)
    const refunded = refunds.reduce((a, r) => a + r.amount, 0n)
    expect(withdrawn + refunded).toBe(paid)
    const settled = await waitFor('ledger = chain payouts', () => {
      const l = stack.service(id)?.ledger
      return l && l.withdrawn === withdrawn.toString() && l.refunded === refunded.toString() && l
    }, 30_000).catch(() => undefined)
    if (!settled) figures.ledger_mismatch++
    if (stack.service(id)!.ledger.paid !== paid.toString()) figures.missed_events++
    const dep = `bp-${stack.chain.chainId}-${id}`
    await waitFor('no processes', () => processesOf(dep, stack.operatorId).length === 0, 30_000).catch(() => undefined)
    figures.leaked += processesOf(dep, stack.operatorId).length
  }

  test('behavior: outage, resets, 429, timeouts and a wrong chain id — nothing invented meanwhile, everything acted on once after', { timeout: 300_000 }, async () => {
    const { chain } = stack
    const blueprintId = await stack.registerDemo({ name: 'rpc-faults' })
    await chain.customer.mint(4n * DEPOSIT)
    const request = async () => (await chain.customer.requestService({ blueprintId, operator: chain.operatorAddress, tier: 0, ttlSeconds: 86_400n, deposit: DEPOSIT })).serviceId
    const paidOf = (id: bigint) => stack.service(id)?.ledger.paid

    // outage while a request arrives: unheard until the RPC is back, then served once
    let a = 0n
    await episode('outage', async () => (a = await request()), () => expect(stack.service(a)).toBeUndefined())
    await waitFor('a active', () => stack.service(a)?.state === 'active', 60_000)

    // connections reset while a top-up arrives: counted once
    await episode('reset', () => chain.customer.topUp(a, TOP_UP), () => expect(paidOf(a)).toBe(DEPOSIT.toString()))
    await waitFor('a top-up counted', () => paidOf(a) === (DEPOSIT + TOP_UP).toString(), 60_000)

    // rate limited (429, Retry-After) while a second request arrives and would be activated
    let b = 0n
    await episode('429', async () => (b = await request()), () => expect(stack.service(b)?.state ?? 'unheard').not.toBe('active'))
    await waitFor('b active', () => stack.service(b)?.state === 'active', 60_000)

    // answers past the timeout while b is topped up
    await episode('slow', () => chain.customer.topUp(b, TOP_UP), () => expect(paidOf(b)).toBe(DEPOSIT.toString()))
    await waitFor('b top-up counted', () => paidOf(b) === (DEPOSIT + TOP_UP).toString(), 60_000)

    // a node on another chain while a is terminated and b's payment runs out: nothing is decided from it — a keeps
    // running, b is not scaled to zero — until the right chain is back
    await episode('wrong-chain', async () => {
      await chain.customer.terminate(a)
      await stack.travel(2n * 3_600n)
    }, () => {
      expect(stack.service(a)!.state).toBe('active')
      expect(processesOf(`bp-${chain.chainId}-${a}`, stack.operatorId)).toHaveLength(1)
      expect(stack.service(b)!.state).toBe('active')
    })
    await waitFor('a closed', () => stack.service(a)?.state === 'closed', 60_000)
    await books(a, DEPOSIT + TOP_UP)
    await waitFor('b at zero', () => stack.service(b)?.state === 'scaled-to-zero', 60_000)
    await chain.customer.topUp(b, TOP_UP)
    await waitFor('b back', () => stack.service(b)?.state === 'active' && paidOf(b) === (DEPOSIT + 2n * TOP_UP).toString(), 60_000)

    // an outage while the daemon has its own transactions to send (b's TTL: withdraw and refund)
    await episode('outage', () => stack.travel(86_400n + 60n), () => expect(stack.service(b)!.state).not.toBe('closed'))
    await waitFor('b closed', () => stack.service(b)?.state === 'closed', 90_000)
    expect(stack.service(b)!.reason).toBe('TTL_REACHED')
    await books(b, DEPOSIT + 2n * TOP_UP)

    for (const id of [a, b]) {
      expect(await stack.events(id, 'ServiceActivated')).toHaveLength(1)
      expect(stack.service(id)!.history.filter((h) => h.to === 'active').length).toBe(id === b ? 2 : 1) // b came back from zero once
    }
    expect(figures).toMatchObject({ leaked: 0, duplicates: 0, double_refunds: 0, missed_events: 0, ledger_mismatch: 0 })
    expect(figures.rpc_faults).toBe(6)
    expect(proxy.spoiled).toBeGreaterThan(6)
  })
})
