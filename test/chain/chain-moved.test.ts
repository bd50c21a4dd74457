/**
 * CHAIN_MOVED: the chain reorganises while the follower reads a block range (a real anvil reorg, `anvil_reorg`, fired
 * by a relay the moment eth_getLogs arrives). The read is refused as inconsistent (retryable), nothing is delivered
 * from it, and the next poll delivers the canonical chain.
 */
import { createServer, type Server } from 'node:http'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { createTestCommon } from '../../core/common.js'
import { createEvmPublicClient } from '../../chain/evm/clients.js'
import { createEvmFollower, type Cursor } from '../../chain/evm/follow.js'
import type { ChainEvent } from '../../chain/events.js'
import { createTestChain, type TestChain } from '../helpers/anvil.js'

let c: TestChain
let relay: Server
let relayUrl = ''
let reorgOnNextGetLogs = false
const rpc = async (url: string, method: string, params: unknown[]) => {
  const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }) })
  return (await r.json()) as { result?: unknown; error?: { message: string } }
}

beforeAll(async () => {
  c = await createTestChain()
  relay = createServer(async (req, res) => {
    const chunks: Buffer[] = []
    for await (const x of req) chunks.push(x as Buffer)
    const body = Buffer.concat(chunks).toString()
    if (reorgOnNextGetLogs && body.includes('"eth_getLogs"')) {
      reorgOnNextGetLogs = false
      // the head block is replaced while the logs of the range ending there are being read
      const r = await rpc(c.rpcUrl, 'anvil_reorg', [1, []])
      if (r.error) throw new Error(`anvil_reorg: ${r.error.message}`)
    }
    const up = await fetch(c.rpcUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
    res.writeHead(up.status, { 'content-type': 'application/json' }).end(Buffer.from(await up.arrayBuffer()))
  })
  await new Promise<void>((r) => relay.listen(0, '127.0.0.1', () => r()))
  relayUrl = `http://127.0.0.1:${(relay.address() as { port: number }).port}`
})
afterAll(async () => {
  await new Promise<void>((r) => relay?.close(() => r()))
  await c?.stop()
})

describe('follower: CHAIN_MOVED', () => {
  test('error: a reorg during a range read is CHAIN_MOVED (retryable), delivers nothing; the next poll delivers the canonical chain', { timeout: 60_000 }, async () => {
    const { common } = createTestCommon()
    const delivered: { events: ChainEvent[]; cursor: Cursor }[] = []
    const start = await c.publicClient.getBlockNumber({ cacheTime: 0 })
    await c.registerBlueprint({ name: 'before-the-reorg' })
    await c.testClient.mine({ blocks: 2 })
    const f = createEvmFollower(common, {
      publicClient: createEvmPublicClient({ rpcUrl: relayUrl, chainId: c.chainId }),
      chainId: c.chainId,
      addresses: [c.addresses.registry, c.addresses.escrow],
      confirmations: 0,
      pollIntervalMs: 50,
      startBlock: start,
      loadCursor: async () => undefined,
      deliver: async (events, cursor) => void delivered.push({ events, cursor }),
    })
    reorgOnNextGetLogs = true
    await expect(f.pollOnce(AbortSignal.timeout(20_000))).rejects.toMatchObject({ code: 'CHAIN_MOVED', retryable: true })
    expect(delivered).toEqual([])
    await f.pollOnce(AbortSignal.timeout(20_000))
    const last = delivered.at(-1)!.cursor
    const canonical = await c.publicClient.getBlock({ blockNumber: last.blockNumber })
    expect(last.blockHash).toBe(canonical.hash)
    expect(delivered.flatMap((d) => d.events).filter((e) => e.type === 'BlueprintRegistered').map((e) => (e as { name: string }).name)).toContain('before-the-reorg')
  })
})
