import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { createTestCommon, type Common } from '../../core/common.js'
import { createEvmPublicClient } from '../../chain/evm/clients.js'
import { createEvmFollower, type Cursor, type EvmFollowerParameters } from '../../chain/evm/follow.js'
import { eventId, type ChainEvent } from '../../chain/events.js'
import { createTestChain, type TestChain } from '../helpers/anvil.js'
import { startRangeLimitedRelay, startRelay, startRewritingRelay } from './proxy.js'

let c: TestChain
beforeAll(async () => {
  c = await createTestChain()
})
afterAll(async () => {
  await c?.stop()
})

/** An in-memory "daemon": what was delivered, and the cursor persisted with it. */
function store(initial?: Cursor) {
  const s = { cursor: initial, events: [] as ChainEvent[], batches: 0, failNext: 0 }
  return {
    s,
    loadCursor: async () => s.cursor,
    deliver: async (events: ChainEvent[], cursor: Cursor) => {
      if (s.failNext > 0) {
        s.failNext--
        throw new Error('disk full')
      }
      // a real daemon writes both in one atomic step
      s.events.push(...events)
      s.cursor = cursor
      s.batches++
    },
  }
}

function follower(common: Common, st: ReturnType<typeof store>, o: Partial<EvmFollowerParameters> & { startBlock: bigint }) {
  return createEvmFollower(common, {
    publicClient: c.publicClient,
    chainId: c.chainId,
    addresses: [c.addresses.registry, c.addresses.escrow],
    confirmations: 0,
    pollIntervalMs: 50,
    loadCursor: st.loadCursor,
    deliver: st.deliver,
    ...o,
  })
}

const names = (events: ChainEvent[]) => events.flatMap((e) => (e.type === 'BlueprintRegistered' ? [e.name] : []))
const head = () => c.publicClient.getBlockNumber({ cacheTime: 0 })
const ids = (events: ChainEvent[]) => events.map(eventId)

async function until(what: string, fn: () => boolean | Promise<boolean>, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

describe('createEvmFollower', () => {
  test('default: delivers the events of both contracts, decoded and in order', async () => {
    const { common } = createTestCommon()
    const st = store()
    const f = follower(common, st, { startBlock: c.addresses.deployBlock })
    const bp = await c.registerBlueprint({ name: 'first' })
    const { serviceId } = await c.requestService({ blueprintId: bp, deposit: 1_000n })
    await f.pollOnce()
    const types = st.s.events.map((e) => e.type)
    expect(types).toEqual(['BlueprintRegistered', 'ServiceInitiated'])
    expect(st.s.events[1]).toMatchObject({ serviceId, blueprintId: bp, deposit: 1_000n, customer: c.customerAddress, preferences: { ok: true, value: {} } })
    expect(st.s.cursor?.blockNumber).toBe(await head())
  })

  test('behavior: only blocks with enough confirmations are delivered', async () => {
    const { common } = createTestCommon()
    const st = store()
    const f = follower(common, st, { startBlock: (await head()) + 1n, confirmations: 2 })
    await c.registerBlueprint({ name: 'needs-two' })
    const at = await head()
    await f.pollOnce()
    expect(names(st.s.events)).toEqual([])
    await c.testClient.mine({ blocks: 1 })
    await f.pollOnce()
    expect(names(st.s.events)).toEqual([])
    expect(st.s.cursor).toBeUndefined() // the first block to deliver has only one confirmation
    await c.testClient.mine({ blocks: 1 })
    await f.pollOnce()
    expect(names(st.s.events)).toEqual(['needs-two'])
    expect(st.s.cursor?.blockNumber).toBe(at)
    expect(await common.metrics.render()).toMatch(/chain_lag_blocks\{chain_id="31337"\} 2/)
  })

  test('behavior: a follower restarted from the saved cursor misses and repeats nothing', async () => {
    const start = (await head()) + 1n
    const a = store()
    const first = follower(createTestCommon().common, a, { startBlock: start, maxBlockRange: 2 })
    for (const n of ['r1', 'r2', 'r3']) await c.registerBlueprint({ name: n })
    await first.pollOnce()
    expect(names(a.s.events)).toEqual(['r1', 'r2', 'r3'])
    expect(a.s.batches).toBeGreaterThan(1) // several ranges, one batch each

    for (const n of ['r4', 'r5']) await c.registerBlueprint({ name: n })
    // the second daemon resumes from what the first persisted
    const b = store(a.s.cursor)
    b.s.failNext = 1 // and its first delivery fails: the same range is delivered again
    const second = follower(createTestCommon().common, b, { startBlock: start })
    await expect(second.pollOnce()).rejects.toThrow('disk full')
    await second.pollOnce()
    expect(names(b.s.events)).toEqual(['r4', 'r5'])

    const all = await c.publicClient.getLogs({ address: [c.addresses.registry, c.addresses.escrow], fromBlock: start, toBlock: b.s.cursor!.blockNumber })
    const delivered = [...ids(a.s.events), ...ids(b.s.events)]
    expect(new Set(delivered).size).toBe(delivered.length)
    expect(delivered).toEqual(all.map((l) => eventId({ chainId: c.chainId, txHash: l.transactionHash!, logIndex: l.logIndex! })))
  })

  test('behavior: with deliveries in flight the next ranges are read while earlier ones commit; a failed one sends the follower back to the block it extended, and none after it is kept', async () => {
    const { common } = createTestCommon()
    const start = (await head()) + 1n
    for (const n of ['p1', 'p2', 'p3', 'p4', 'p5', 'p6']) await c.registerBlueprint({ name: n })
    const s = { cursor: undefined as Cursor | undefined, events: [] as ChainEvent[], calls: 0, inFlight: 0, mostInFlight: 0, refused: 0 }
    const held: Array<() => void> = []
    const f = createEvmFollower(common, {
      publicClient: c.publicClient,
      chainId: c.chainId,
      addresses: [c.addresses.registry],
      confirmations: 0,
      pollIntervalMs: 50,
      maxBlockRange: 1,
      maxInFlight: 4,
      startBlock: start,
      loadCursor: async () => s.cursor,
      deliver: async (events, cursor, after) => {
        const call = ++s.calls
        s.inFlight++
        s.mostInFlight = Math.max(s.mostInFlight, s.inFlight)
        // each delivery commits once the one two after it was made (or, when none comes, shortly), in order
        await new Promise<void>((resolve) => {
          held.push(resolve)
          if (held.length > 2) held.shift()!()
          setTimeout(resolve, 200)
        })
        try {
          if (call === 2) throw new Error('disk full')
          // as the daemon's write: kept only on top of the delivery it extends
          if (s.cursor?.blockNumber !== after?.blockNumber || s.cursor?.blockHash !== after?.blockHash) {
            s.refused++
            throw new Error('out of order')
          }
          s.events.push(...events)
          s.cursor = cursor
        } finally {
          s.inFlight--
        }
      },
    })
    await expect(f.pollOnce()).rejects.toThrow('disk full')
    expect(s.mostInFlight).toBeGreaterThan(1)
    expect(s.refused).toBeGreaterThan(0) // made while the failed one was in flight, and refused
    await f.pollOnce()
    expect(names(s.events)).toEqual(['p1', 'p2', 'p3', 'p4', 'p5', 'p6'])
    expect(new Set(ids(s.events)).size).toBe(s.events.length)
    expect(s.cursor?.blockNumber).toBe(await head())
  })

  test('behavior: an event reorged out before its confirmations is never delivered', async () => {
    const { common } = createTestCommon()
    const st = store()
    const f = follower(common, st, { startBlock: (await head()) + 1n, confirmations: 3 })
    const snapshot = await c.testClient.snapshot()
    await c.registerBlueprint({ name: 'doomed' })
    await c.testClient.mine({ blocks: 1 })
    await f.pollOnce()
    await c.testClient.revert({ id: snapshot })
    await c.registerBlueprint({ name: 'kept' })
    await c.testClient.mine({ blocks: 4 })
    await f.pollOnce()
    expect(names(st.s.events)).toEqual(['kept'])
    expect(await common.metrics.render()).not.toMatch(/chain_reorgs_total\{chain_id="31337"\} [1-9]/)
  })

  test('behavior: a reorg below the cursor is detected by parent hash and the new branch delivered', async () => {
    const { common } = createTestCommon()
    const st = store()
    const f = follower(common, st, { startBlock: (await head()) + 1n, confirmations: 0 })
    await c.registerBlueprint({ name: 'base' })
    await f.pollOnce()
    const base = st.s.cursor!
    const snapshot = await c.testClient.snapshot()
    await c.registerBlueprint({ name: 'orphaned' })
    await f.pollOnce()
    expect(names(st.s.events)).toEqual(['base', 'orphaned'])
    const orphanedCursor = st.s.cursor!

    await c.testClient.revert({ id: snapshot })
    await c.registerBlueprint({ name: 'replacement' })
    await c.registerBlueprint({ name: 'after' })
    await f.pollOnce()
    expect(await common.metrics.render()).toMatch(/chain_reorgs_total\{chain_id="31337"\} 1/)
    // delivered again from the common ancestor: the new branch, nothing of the old one twice
    expect(names(st.s.events)).toEqual(['base', 'orphaned', 'replacement', 'after'])
    expect(st.s.cursor!.blockNumber).toBe(base.blockNumber + 2n)
    const canonical = await c.publicClient.getBlock({ blockNumber: orphanedCursor.blockNumber })
    expect(canonical.hash).not.toBe(orphanedCursor.blockHash)
    expect(st.s.cursor!.blockHash).toBe((await c.publicClient.getBlock({ blockNumber: st.s.cursor!.blockNumber })).hash)
  })

  test('behavior: a reorg of the cursor block itself is detected while idle', async () => {
    const { common } = createTestCommon()
    const st = store()
    const f = follower(common, st, { startBlock: (await head()) + 1n, confirmations: 0 })
    await c.registerBlueprint({ name: 'kept-base' })
    await f.pollOnce()
    const snapshot = await c.testClient.snapshot()
    await c.registerBlueprint({ name: 'gone' })
    await f.pollOnce()
    await c.testClient.revert({ id: snapshot })
    await c.registerBlueprint({ name: 'instead' }) // same height as 'gone'
    await f.pollOnce()
    expect(await common.metrics.render()).toMatch(/chain_reorgs_total\{chain_id="31337"\} 1/)
    expect(names(st.s.events)).toEqual(['kept-base', 'gone', 'instead'])
  })

  test('error: RPC down — the loop retries with backoff, never throws, and recovers without gaps', async () => {
    const url = new URL(c.rpcUrl)
    const relay = await startRelay({ host: url.hostname, port: Number(url.port) })
    const { common } = createTestCommon()
    const st = store()
    const publicClient = createEvmPublicClient({ rpcUrl: relay.url, chainId: c.chainId, pollingIntervalMs: 50, requestTimeoutMs: 2_000 })
    const f = createEvmFollower(common, {
      publicClient,
      chainId: c.chainId,
      addresses: [c.addresses.registry],
      confirmations: 0,
      pollIntervalMs: 50,
      maxBackoffMs: 300,
      startBlock: (await head()) + 1n,
      loadCursor: st.loadCursor,
      deliver: st.deliver,
    })
    try {
      f.start()
      await c.registerBlueprint({ name: 'before-outage' })
      await until('first event', () => names(st.s.events).includes('before-outage'))
      await relay.down()
      await c.registerBlueprint({ name: 'during-outage' })
      await until('rpc errors', async () => /chain_rpc_errors_total\{[^}]*\} [3-9]/.test(await common.metrics.render()))
      expect(names(st.s.events)).toEqual(['before-outage'])
      await relay.up()
      await c.registerBlueprint({ name: 'after-outage' })
      await until('recovery', () => names(st.s.events).includes('after-outage'))
      expect(names(st.s.events)).toEqual(['before-outage', 'during-outage', 'after-outage'])
    } finally {
      await f.stop()
      await relay.close()
    }
  })

  test('behavior: logs that do not decode are logged and skipped; the rest is delivered', async () => {
    const { common } = createTestCommon()
    const st = store()
    // the token's Transfer and Approval logs are not ChainEvents
    const f = follower(common, st, { startBlock: (await head()) + 1n, addresses: [c.addresses.registry, c.addresses.escrow, c.addresses.token] })
    const bp = await c.registerBlueprint({ name: 'among-noise' })
    const { serviceId } = await c.requestService({ blueprintId: bp, deposit: 5n })
    await f.pollOnce()
    expect(st.s.events.map((e) => e.type)).toEqual(['BlueprintRegistered', 'ServiceInitiated'])
    expect(st.s.events[1]).toMatchObject({ serviceId })
    // mint (Transfer), approve (Approval), the deposit's Transfer
    expect(await common.metrics.render()).toMatch(/chain_malformed_events_total\{chain_id="31337"\} 3/)
  })

  test('behavior: a node that refuses large block ranges is read in smaller ranges', async () => {
    const relay = await startRangeLimitedRelay(c.rpcUrl, 3n)
    try {
      const { common } = createTestCommon()
      const st = store()
      const start = (await head()) + 1n
      for (const n of ['w1', 'w2', 'w3', 'w4', 'w5']) await c.registerBlueprint({ name: n })
      await c.testClient.mine({ blocks: 5 })
      const f = createEvmFollower(common, {
        publicClient: createEvmPublicClient({ rpcUrl: relay.url, chainId: c.chainId, pollingIntervalMs: 50 }),
        chainId: c.chainId,
        addresses: [c.addresses.registry],
        confirmations: 0,
        pollIntervalMs: 50,
        maxBlockRange: 16,
        startBlock: start,
        loadCursor: st.loadCursor,
        deliver: st.deliver,
      })
      await f.pollOnce()
      expect(relay.refused).toBeGreaterThan(0)
      expect(names(st.s.events)).toEqual(['w1', 'w2', 'w3', 'w4', 'w5'])
      expect(st.s.cursor?.blockNumber).toBe(await head())
    } finally {
      await relay.close()
    }
  })

  test('error: CHAIN_MOVED — a log removed while its range was read fails the poll (retryable), nothing is delivered; the next poll delivers once', async () => {
    let removeOnce = true
    const relay = await startRewritingRelay(c.rpcUrl, (method, answer) => {
      const logs = answer.result
      if (method !== 'eth_getLogs' || !Array.isArray(logs) || !logs.length || !removeOnce) return answer
      removeOnce = false
      return { result: logs.map((l: Record<string, unknown>, i: number) => (i === 0 ? { ...l, removed: true } : l)) }
    })
    try {
      const { common } = createTestCommon()
      const st = store()
      const start = (await head()) + 1n
      for (const n of ['m1', 'm2']) await c.registerBlueprint({ name: n })
      const f = createEvmFollower(common, {
        publicClient: createEvmPublicClient({ rpcUrl: relay.url, chainId: c.chainId, pollingIntervalMs: 50 }),
        chainId: c.chainId,
        addresses: [c.addresses.registry],
        confirmations: 0,
        pollIntervalMs: 50,
        startBlock: start,
        loadCursor: st.loadCursor,
        deliver: st.deliver,
      })
      await expect(f.pollOnce()).rejects.toMatchObject({ code: 'CHAIN_MOVED', retryable: true, details: [expect.stringMatching(/was removed/)] })
      expect(st.s.events).toEqual([])
      expect(st.s.cursor).toBeUndefined()
      await f.pollOnce()
      expect(names(st.s.events)).toEqual(['m1', 'm2'])
    } finally {
      await relay.close()
    }
  })

  test('error: CHAIN_ID_MISMATCH — a node on another chain delivers nothing; once it serves the right chain again, everything arrives once', async () => {
    let wrong = true
    const relay = await startRewritingRelay(c.rpcUrl, (method, answer) => (method === 'eth_chainId' && wrong ? { result: '0x1' } : answer))
    try {
      const { common } = createTestCommon()
      const st = store()
      const start = (await head()) + 1n
      for (const n of ['w1', 'w2']) await c.registerBlueprint({ name: n })
      const f = createEvmFollower(common, {
        publicClient: createEvmPublicClient({ rpcUrl: relay.url, chainId: c.chainId, pollingIntervalMs: 50 }),
        chainId: c.chainId,
        addresses: [c.addresses.registry],
        confirmations: 0,
        pollIntervalMs: 50,
        startBlock: start,
        loadCursor: st.loadCursor,
        deliver: st.deliver,
      })
      await expect(f.pollOnce()).rejects.toMatchObject({ code: 'CHAIN_ID_MISMATCH', retryable: true, details: [expect.stringMatching(/answers 1$/)] })
      await expect(f.pollOnce()).rejects.toMatchObject({ code: 'CHAIN_ID_MISMATCH' })
      expect(st.s.events).toEqual([])
      expect(st.s.cursor).toBeUndefined()
      wrong = false
      await f.pollOnce()
      expect(names(st.s.events)).toEqual(['w1', 'w2'])
    } finally {
      await relay.close()
    }
  })

  test('error: bad options are refused at construction', () => {
    const st = store()
    expect(() => follower(createTestCommon().common, st, { startBlock: 0n, addresses: [], confirmations: -1 })).toThrow(/addresses: empty[\s\S]*confirmations: got -1/)
    expect(() => follower(createTestCommon().common, st, { startBlock: -1n })).toThrow(expect.objectContaining({ code: 'INVALID_OPTIONS', retryable: false }))
  })

  test('behavior: stops promptly when the shutdown signal aborts', async () => {
    const sd = createTestCommon()
    const st = store()
    const f = follower(sd.common, st, { startBlock: await head(), pollIntervalMs: 60_000 })
    f.start()
    await until('first poll', () => st.s.batches > 0)
    await sd.shutdown(1_000)
    await f.stop()
    expect(sd.common.signal.aborted).toBe(true)
  })
})
