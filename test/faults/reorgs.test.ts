/**
 * Fault suite, reorgs: a real daemon on a real anvil chain while the chain reorganises (anvil `evm_snapshot` /
 * `evm_revert`, then a longer branch mined without the reverted transactions).
 * - Within the confirmations (`[chain] confirmations = 65`): a request, a top-up and a termination, each reorged out at
 *   depths 1 .. 64, are never acted on — no service, no payment counted, nothing torn down — and the same actions on
 *   the canonical chain are acted on exactly once.
 * - Deeper than the confirmations (`confirmations = 2`): a request the daemon already served is reorged out at depth 8
 *   and 64; its deployment is torn down (SERVICE_VANISHED), nothing is paid out for it, and no process is left.
 * Figures go into the fault line (test/faults/figures.ts).
 */
import type { Hex } from 'viem'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { processesOf, startInProcess, startStack, waitFor, type Stack } from '../helpers/stack.js'
import { recordFigures } from './figures.js'

const DEPTHS = [1, 2, 3, 5, 8, 13, 21, 34, 55, 64]
const CONFIRMATIONS = 65
const RATE = 1000n // base units per second (the demo blueprint's basic tier)

const figures = { reorgs: 0, leaked: 0, duplicates: 0, double_refunds: 0, missed_events: 0, ledger_mismatch: 0 }
afterAll(() => recordFigures('reorgs', figures))

describe('faults: reorgs within the confirmations', () => {
  let stack: Stack
  let d: Awaited<ReturnType<typeof startInProcess>>
  beforeAll(async () => {
    stack = await startStack({ confirmations: CONFIRMATIONS, blockTime: 0 })
    d = await startInProcess(stack)
  })
  afterAll(async () => {
    await d?.stop()
    await stack?.stop()
  })

  /** Mine past the confirmations and wait until the daemon has read everything up to what is final. */
  async function settle() {
    const { chain } = stack
    await chain.testClient.mine({ blocks: CONFIRMATIONS + 1 })
    const head = await chain.publicClient.getBlockNumber({ cacheTime: 0 })
    await waitFor('cursor at the final block', () => BigInt(d.daemon.cursor()?.blockNumber ?? 0) >= head - BigInt(CONFIRMATIONS), 30_000)
    // one more loop pass after the delivery, so a wrongly applied event would have been acted on
    await new Promise((r) => setTimeout(r, 700))
  }

  /** `act` lands in a block that gets `depth` blocks deep, then the chain reorganises onto a longer branch without it. */
  async function reorgOut(depth: number, act: () => Promise<unknown>) {
    const { chain } = stack
    const snapshot = (await chain.testClient.snapshot()) as Hex
    await act()
    if (depth > 1) await chain.testClient.mine({ blocks: depth - 1 })
    await chain.testClient.revert({ id: snapshot })
    await chain.testClient.mine({ blocks: depth + 1 })
    figures.reorgs++
    await settle()
  }

  test('behavior: a request, a top-up and a termination reorged out at depths 1..64 are never acted on; on the canonical chain each counts once', { timeout: 600_000 }, async () => {
    const { chain } = stack
    const blueprintId = await stack.registerDemo({ name: 'reorgs' })
    await chain.customer.mint(100_000_000n)
    const deposit = 3_600n * RATE
    const { serviceId } = await chain.customer.requestService({ blueprintId, operator: chain.operatorAddress, tier: 0, ttlSeconds: 86_400n, deposit })
    const dep = `bp-${chain.chainId}-${serviceId}`
    await chain.testClient.mine({ blocks: CONFIRMATIONS + 1 })
    await waitFor('active', () => stack.service(serviceId)?.state === 'active', 60_000)
    await settle()

    for (const depth of DEPTHS) {
      // a request that never was: no record, no process
      let orphan: bigint | undefined
      await reorgOut(depth, async () => (orphan = (await chain.customer.requestService({ blueprintId, operator: chain.operatorAddress, tier: 0, ttlSeconds: 86_400n, deposit })).serviceId))
      expect(stack.service(orphan!), `request reorged out at depth ${depth}`).toBeUndefined()
      expect(processesOf(`bp-${chain.chainId}-${orphan}`, stack.operatorId)).toEqual([])

      // a top-up that never was: not counted
      await reorgOut(depth, () => chain.customer.topUp(serviceId, 600n * RATE))
      const paid = stack.service(serviceId)!.ledger.paid
      if (paid !== deposit.toString()) figures.missed_events++
      expect(paid, `top-up reorged out at depth ${depth}`).toBe(deposit.toString())

      // a termination that never was: the service keeps running
      await reorgOut(depth, () => chain.customer.terminate(serviceId))
      expect(stack.service(serviceId)!.state, `termination reorged out at depth ${depth}`).toBe('active')
      const running = processesOf(dep, stack.operatorId).length
      figures.duplicates += Math.max(0, running - 1)
      expect(running).toBe(1)
    }

    // the same actions on the canonical chain: acted on once each
    await chain.customer.topUp(serviceId, 600n * RATE)
    await settle()
    const paid = stack.service(serviceId)!.ledger.paid
    if (paid !== (deposit + 600n * RATE).toString()) figures.missed_events++
    expect(paid).toBe((deposit + 600n * RATE).toString())
    await chain.customer.terminate(serviceId)
    await chain.testClient.mine({ blocks: CONFIRMATIONS + 1 })
    const miner = setInterval(() => void chain.testClient.mine({ blocks: 1 }).catch(() => undefined), 200)
    try {
      await waitFor('closed', () => stack.service(serviceId)?.state === 'closed', 60_000)
      await chain.testClient.mine({ blocks: CONFIRMATIONS + 1 })
      const refunds = await stack.refunds(serviceId)
      figures.double_refunds += Math.max(0, refunds.length - 1)
      const withdrawn = (await stack.events(serviceId, 'Withdrawn')).reduce((a, e) => a + (e.amount as bigint), 0n)
      const refunded = refunds.reduce((a, r) => a + r.amount, 0n)
      expect(withdrawn + refunded).toBe(deposit + 600n * RATE)
      const settled = await waitFor('ledger = chain payouts', () => {
        const l = stack.service(serviceId)?.ledger
        return l && l.withdrawn === withdrawn.toString() && l.refunded === refunded.toString() && l
      }, 30_000).catch(() => undefined)
      if (!settled) figures.ledger_mismatch++
      expect(settled).toBeTruthy()
    } finally {
      clearInterval(miner)
    }
    await waitFor('no processes', () => processesOf(dep, stack.operatorId).length === 0, 30_000).catch(() => undefined)
    figures.leaked += processesOf(dep, stack.operatorId).length
    expect(figures).toMatchObject({ leaked: 0, duplicates: 0, double_refunds: 0, missed_events: 0, ledger_mismatch: 0 })
  })
})

describe('faults: reorgs deeper than the confirmations', () => {
  let stack: Stack
  let d: Awaited<ReturnType<typeof startInProcess>>
  beforeAll(async () => {
    stack = await startStack({ confirmations: 2, blockTime: 0, extra: { loop: { interval_ms: 300, vanished_after_ms: 2_000 } } })
    d = await startInProcess(stack)
  })
  afterAll(async () => {
    await d?.stop()
    await stack?.stop()
  })

  test('behavior: a served request reorged out at depth 8 and 64 is torn down as SERVICE_VANISHED, nothing paid out, nothing left running', { timeout: 300_000 }, async () => {
    const { chain } = stack
    const blueprintId = await stack.registerDemo({ name: 'deep-reorgs' })
    await chain.customer.mint(100_000_000n)
    for (const depth of [8, 64]) {
      const snapshot = (await chain.testClient.snapshot()) as Hex
      const start = await chain.publicClient.getBlockNumber({ cacheTime: 0 })
      const { serviceId } = await chain.customer.requestService({ blueprintId, operator: chain.operatorAddress, tier: 0, ttlSeconds: 86_400n, deposit: 3_600n * RATE })
      const dep = `bp-${chain.chainId}-${serviceId}`
      const miner = setInterval(() => void chain.testClient.mine({ blocks: 1 }).catch(() => undefined), 200)
      try {
        await waitFor('active', () => stack.service(serviceId)?.state === 'active', 60_000)
      } finally {
        clearInterval(miner)
      }
      const mined = (await chain.publicClient.getBlockNumber({ cacheTime: 0 })) - start
      if (mined < BigInt(depth)) await chain.testClient.mine({ blocks: depth - Number(mined) })
      expect(processesOf(dep, stack.operatorId)).toHaveLength(1)

      await chain.testClient.revert({ id: snapshot })
      await chain.testClient.mine({ blocks: depth + 2 })
      figures.reorgs++
      const miner2 = setInterval(() => void chain.testClient.mine({ blocks: 1 }).catch(() => undefined), 300)
      try {
        const s = await waitFor(`closed as vanished (depth ${depth})`, () => stack.service(serviceId)?.state === 'closed' && stack.service(serviceId), 60_000)
        expect(s.reason).toBe('SERVICE_VANISHED')
      } finally {
        clearInterval(miner2)
      }
      await waitFor('no processes', () => processesOf(dep, stack.operatorId).length === 0, 15_000).catch(() => undefined)
      figures.leaked += processesOf(dep, stack.operatorId).length
      expect(processesOf(dep, stack.operatorId)).toEqual([])
      // nothing was paid out or refunded for it on the chain that remains
      expect(await stack.events(serviceId, 'Refunded')).toEqual([])
      expect(await stack.events(serviceId, 'Withdrawn')).toEqual([])
    }
  })
})
