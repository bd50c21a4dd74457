/**
 * A service the chain forgets after it was served (a reorg deeper than the confirmations; here anvil reverted to a
 * snapshot taken before the request) is torn down once it has been missing for `loop.vanished_after_ms`: no process
 * keeps running for nobody, the record closes with SERVICE_VANISHED, and nothing is sent to the chain for it.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { serviceEscrowAbi } from '../../chain/contracts/abi.js'
import { processesOf, startInProcess, startStack, waitFor, type Stack } from '../helpers/stack.js'

describe('e2e: a service the chain forgot', () => {
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

  test('behavior: destroyed and closed as SERVICE_VANISHED, other services untouched', async () => {
    const { chain } = stack
    const blueprintId = await stack.registerDemo()
    await chain.customer.mint(20_000_000n)
    const kept = await chain.customer.requestService({ blueprintId, operator: chain.operatorAddress, tier: 0, ttlSeconds: 3600n, deposit: 3_600_000n })
    const miner = setInterval(() => void chain.testClient.mine({ blocks: 1 }).catch(() => undefined), 200)
    let snapshot: `0x${string}`
    try {
      await waitFor('first service active', () => stack.service(kept.serviceId)?.state === 'active', 30_000)
      snapshot = await chain.testClient.snapshot()
    } finally {
      clearInterval(miner)
    }
    const { serviceId } = await chain.customer.requestService({ blueprintId, operator: chain.operatorAddress, tier: 0, ttlSeconds: 3600n, deposit: 3_600_000n })
    const mine = setInterval(() => void chain.testClient.mine({ blocks: 1 }).catch(() => undefined), 200)
    try {
      await waitFor('second service active', () => stack.service(serviceId)?.state === 'active', 30_000)
    } finally {
      clearInterval(mine)
    }
    const dep = `bp-${chain.chainId}-${serviceId}`
    expect(processesOf(dep, stack.operatorId)).toHaveLength(1)

    // the chain forgets the second request and everything after it, deeper than the confirmations
    await chain.testClient.revert({ id: snapshot! })
    await chain.testClient.mine({ blocks: 8 })
    expect((await chain.publicClient.readContract({ address: chain.addresses.escrow, abi: serviceEscrowAbi, functionName: 'getService', args: [serviceId] })).state).toBe(0)

    const s = await waitFor('closed as vanished', () => stack.service(serviceId)?.state === 'closed' && stack.service(serviceId), 30_000)
    expect(s.reason).toBe('SERVICE_VANISHED')
    expect(s.replicas).toBe(0)
    expect(s.history.map((h) => h.to)).toEqual(['requested', 'provisioning', 'active', 'terminating', 'closed'])
    expect(processesOf(dep, stack.operatorId)).toEqual([])
    // nothing was paid out or refunded for it on the chain that remains
    expect(await stack.events(serviceId, 'Refunded')).toEqual([])
    expect(await stack.events(serviceId, 'Withdrawn')).toEqual([])
    // the service the chain still knows keeps running
    expect(stack.service(kept.serviceId)?.state).toBe('active')
    expect(processesOf(`bp-${chain.chainId}-${kept.serviceId}`, stack.operatorId)).toHaveLength(1)
  })
})
