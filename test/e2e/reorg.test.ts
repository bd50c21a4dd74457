/**
 * A request that is reorged out before it has its confirmations is never acted on: no service record, no process,
 * no transaction. The same daemon then serves a request that stays on the canonical chain.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { processesOf, startInProcess, startStack, waitFor, type Stack } from '../helpers/stack.js'

describe('e2e: reorg', () => {
  let stack: Stack
  let d: Awaited<ReturnType<typeof startInProcess>>
  beforeAll(async () => {
    // blocks only when the test mines them, so the test decides what is confirmed
    stack = await startStack({ confirmations: 3, blockTime: 0 })
    d = await startInProcess(stack)
  })
  afterAll(async () => {
    await d?.stop()
    await stack?.stop()
  })

  test('behavior: an event reorged out before confirmation is never acted on', async () => {
    const { chain } = stack
    const blueprintId = await stack.registerDemo()
    await chain.customer.mint(10_000_000n)
    await chain.testClient.mine({ blocks: 4 })
    const snapshot = await chain.testClient.snapshot()
    const { serviceId } = await chain.customer.requestService({ blueprintId, operator: chain.operatorAddress, tier: 0, ttlSeconds: 3600n, deposit: 3_600_000n })
    const orphanBlock = await chain.publicClient.getBlockNumber()
    await chain.testClient.mine({ blocks: 1 }) // one confirmation of three: not yet final
    await new Promise((r) => setTimeout(r, 1500)) // let the daemon poll while the event is visible but unconfirmed
    expect(stack.service(serviceId)).toBeUndefined()

    await chain.testClient.revert({ id: snapshot }) // the request's block is gone
    await chain.testClient.mine({ blocks: 6 }) // a longer canonical chain without it
    const head = await chain.publicClient.getBlockNumber()
    expect(head).toBeGreaterThan(orphanBlock + 3n)
    await waitFor('cursor past the orphaned block', () => BigInt(d.daemon.cursor()?.blockNumber ?? 0) >= head - 3n)
    expect(stack.service(serviceId)).toBeUndefined()
    expect(Object.keys(d.daemon.store.read().services)).toEqual([])
    expect(processesOf(`bp-${chain.chainId}-${serviceId}`, stack.operatorId)).toEqual([])

    // the canonical request (the same id, since the first never happened) is served once it is confirmed
    const again = await chain.customer.requestService({ blueprintId, operator: chain.operatorAddress, tier: 0, ttlSeconds: 3600n, deposit: 3_600_000n })
    expect(again.serviceId).toBe(serviceId)
    const miner = setInterval(() => void chain.testClient.mine({ blocks: 1 }).catch(() => undefined), 300)
    try {
      const s = await waitFor('active', () => stack.service(serviceId)?.state === 'active' && stack.service(serviceId), 30_000)
      expect(s.history[0]!.eventId).toContain(again.hash.toLowerCase())
    } finally {
      clearInterval(miner)
    }
    // idle polls are not all written, but the cursor reaches the state file at the latest when the daemon stops
    await chain.testClient.mine({ blocks: 5 })
    const tip = await chain.publicClient.getBlockNumber()
    await waitFor('cursor moved', () => BigInt(d.daemon.cursor()!.blockNumber) >= tip - 3n)
    const last = d.daemon.cursor()
    await d.daemon.stop()
    expect(d.daemon.store.read().cursor).toEqual(last)
  })
})
