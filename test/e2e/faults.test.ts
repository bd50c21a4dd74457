/**
 * Fault injection: the RPC endpoint unreachable at start-up and going away while services run. The daemon neither
 * crashes nor loses anything; when the RPC returns it catches up (here: a payment that expired meanwhile).
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { startRelay, type RpcRelay } from '../chain/proxy.js'
import { processesOf, startInProcess, startStack, waitFor, type Stack } from '../helpers/stack.js'

describe('e2e: faults', () => {
  let stack: Stack
  let relay: RpcRelay
  let d: Awaited<ReturnType<typeof startInProcess>> | undefined
  beforeAll(async () => {
    stack = await startStack()
    const url = new URL(stack.chain.rpcUrl)
    relay = await startRelay({ host: url.hostname, port: Number(url.port) })
    ;(stack.doc.chain as Record<string, unknown>).rpc_url = relay.url
    ;(stack.doc.chain as Record<string, unknown>).request_timeout_ms = 2000
  })
  afterAll(async () => {
    await d?.stop()
    await relay?.close()
    await stack?.stop()
  })

  test('behavior: RPC unreachable at start-up, then back — the daemon starts, waits, and serves', async () => {
    await relay.down()
    d = await startInProcess(stack)
    const blueprintId = await stack.registerDemo()
    const { serviceId } = await stack.chain.requestService({ blueprintId, deposit: 60_000n, ttlSeconds: 3600n })
    await new Promise((r) => setTimeout(r, 1500))
    expect(stack.service(serviceId)).toBeUndefined() // nothing heard yet, nothing invented
    await relay.up()
    await waitFor('active', () => stack.service(serviceId)?.state === 'active', 30_000)
  })

  test('behavior: RPC lost while a payment expires — caught up once it returns, nothing lost', async () => {
    const dep = `bp-${stack.chain.chainId}-1`
    expect(processesOf(dep, stack.operatorId)).toHaveLength(1)
    await relay.down()
    await stack.travel(120n) // the one-minute deposit runs out while the daemon cannot see the chain
    await new Promise((r) => setTimeout(r, 1500))
    expect(stack.service(1n)!.state).toBe('active') // it cannot know yet, and it did not crash
    await relay.up()
    await waitFor('scaled-to-zero', () => stack.service(1n)?.state === 'scaled-to-zero', 30_000)
    await waitFor('no processes', () => processesOf(dep, stack.operatorId).length === 0)
    expect(stack.service(1n)!.history.filter((h) => h.to === 'requested')).toHaveLength(1)
  })
})
