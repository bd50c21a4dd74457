/**
 * Follow TFChain's finalized blocks for the operator's twin and deliver its normalized events (contracts created,
 * updated, cancelled, billed, grace periods, nodes down/up) block by block, then persist the cursor. Delivery is
 * at-least-once: a crash between `deliver` and the cursor write delivers the block again (dedupe by
 * blockNumber + eventIndex). With no cursor, watching starts at the finalized head (or `startBlock`) after reading
 * the twin's live contracts from storage at that block. @polkadot/api is loaded only when the watcher connects.
 */
import type { ApiPromise } from '@polkadot/api'
import type { Common } from '../../core/common.js'
import { AbortedError, BaseError } from '../../core/errors.js'
import { sleep, withTimeout } from '../../core/retry.js'
import { contractFromChain, normalizeEvents, type RawTfchainEvent } from './normalizeEvents.js'
import { loadTfchainCursor, saveTfchainCursor, type TfchainCursor } from './cursor.js'
import type { TfchainEvent } from './events.js'

export type TfchainWatcherParameters = {
  /** WebSocket URL of a TFChain node. */
  url: string
  /** polkadot.js types for runtimes whose metadata carries none (v12, e.g. spec 61). */
  types?: Record<string, unknown>
  /** The operator's twin id. */
  twinId: number
  /** Cursor file, e.g. `<data_dir>/tfchain/cursor.json`. */
  cursorPath: string
  /** First block when there is no cursor; default the finalized head. */
  startBlock?: number
  /** Pause between polls when caught up, ms. Default 6 000 (one TFChain block). */
  pollIntervalMs?: number
  /** Timeout of each RPC call, ms. Default 15 000. */
  rpcTimeoutMs?: number
  /** Most blocks per poll. Default 200. */
  maxBlocksPerPoll?: number
  /** A node hosting a contract is reported down after this long without an uptime report, ms. Default 2 h. */
  nodeDownAfterMs?: number
  /** Largest backoff after repeated failures, ms. Default 30 000. */
  maxBackoffMs?: number
  /** Handle one block's events; throwing makes the watcher retry the same block. Called for event-less blocks too. */
  deliver(events: TfchainEvent[], cursor: TfchainCursor): Promise<void>
}

export type TfchainWatcher = {
  start(): void
  stop(): Promise<void>
  /** Deliver every finalized block after the cursor (up to maxBlocksPerPoll); throws on failure. */
  pollOnce(signal?: AbortSignal): Promise<{ delivered: number; cursor: TfchainCursor }>
  /** The cursor in memory (undefined before the first poll). */
  cursor(): TfchainCursor | undefined
}

/** Create a watcher; nothing connects until `start()` or `pollOnce()`. */
export function createTfchainWatcher(common: Common, p: TfchainWatcherParameters): TfchainWatcher {
  const bad: string[] = []
  if (!/^wss?:\/\//.test(p.url)) bad.push(`url: got ${JSON.stringify(p.url)}, expected ws:// or wss://`)
  if (!Number.isInteger(p.twinId) || p.twinId <= 0) bad.push(`twinId: got ${p.twinId}, expected a positive integer`)
  if (bad.length) throw new BaseError('invalid TFChain watcher options', { code: 'INVALID_OPTIONS', details: bad })
  const log = common.logger.child({ twinId: p.twinId })
  const rpcTimeout = p.rpcTimeoutMs ?? 15_000
  const maxBlocks = p.maxBlocksPerPoll ?? 200
  const nodeDownAfterMs = p.nodeDownAfterMs ?? 2 * 3_600_000
  const m = {
    cursor: common.metrics.gauge('tfchain_cursor_block', 'Last TFChain block fully delivered'),
    finalized: common.metrics.gauge('tfchain_finalized_block', 'Finalized TFChain block seen by the watcher'),
    events: common.metrics.counter('tfchain_events_delivered_total', 'TFChain events delivered, by type'),
    errors: common.metrics.counter('tfchain_watch_errors_total', 'Failed TFChain polls (retried)'),
  }
  let api: ApiPromise | undefined
  let cur: TfchainCursor | undefined
  let lock: Promise<unknown> = Promise.resolve()
  let controller: AbortController | undefined
  let loop: Promise<void> | undefined

  const call = <T>(what: string, fn: () => Promise<T>, signal: AbortSignal): Promise<T> =>
    withTimeout(what, rpcTimeout, () => fn(), signal).catch((err: unknown) => {
      if (signal.aborted) throw new AbortedError(what)
      if (err instanceof BaseError) throw err
      throw new BaseError(`TFChain ${what} failed`, { code: 'RPC_UNAVAILABLE', retryable: true, cause: err })
    })

  const connect = async (signal: AbortSignal): Promise<ApiPromise> => {
    if (api?.isConnected) return api
    await disconnect()
    const { ApiPromise, WsProvider } = await import('@polkadot/api')
    const provider = new WsProvider(p.url, false)
    const created = call('connect', async () => {
      await provider.connect()
      return ApiPromise.create({ provider, types: p.types as never, noInitWarn: true, throwOnConnect: true })
    }, signal)
    try {
      api = await created
    } catch (err) {
      await provider.disconnect().catch(() => {})
      throw err
    }
    return api
  }
  const disconnect = async () => {
    const a = api
    api = undefined
    await a?.disconnect().catch(() => {})
  }

  const rawEvents = async (a: ApiPromise, hash: string, signal: AbortSignal): Promise<{ raw: RawTfchainEvent[]; at: number }> => {
    const [records, now] = await call('events', () => Promise.all([a.query.system!.events!.at(hash), a.query.timestamp!.now!.at(hash)]), signal)
    const raw = (records as unknown as Array<{ event: { section: string; method: string; data: { toJSON(): unknown[] } } }>).map((r) => ({
      section: r.event.section,
      method: r.event.method,
      data: r.event.data.toJSON(),
    }))
    return { raw, at: Number((now as unknown as { toString(): string }).toString()) }
  }

  /** The twin's live contracts at `hash` (the start of watching without a cursor). */
  const bootstrap = async (a: ApiPromise, n: number, hash: string, signal: AbortSignal): Promise<TfchainCursor> => {
    const entries = await call('contracts.entries', () => a.query.smartContractModule!.contracts!.entriesAt!(hash), signal)
    const { at } = await rawEvents(a, hash, signal)
    const c: TfchainCursor = { v: 1, twinId: p.twinId, blockNumber: n, blockHash: hash, contracts: {}, nodes: {} }
    for (const [, value] of entries) {
      const { contract, twinId, state } = contractFromChain(value.toJSON())
      if (twinId !== p.twinId || state === 'deleted' || contract.contractId === '0') continue
      c.contracts[contract.contractId] = contract
      if (contract.nodeId) c.nodes[contract.nodeId] = { lastUptimeAt: at, down: false }
    }
    log.info({ block: n, contracts: Object.keys(c.contracts).length }, 'TFChain watch starts without a cursor')
    return c
  }

  const poll = async (signal: AbortSignal) => {
    const a = await connect(signal)
    const finHash = await call('getFinalizedHead', () => a.rpc.chain.getFinalizedHead(), signal)
    const fin = (await call('getHeader', () => a.rpc.chain.getHeader(finHash), signal)).number.toNumber()
    m.finalized.set(fin)
    if (!cur) cur = loadTfchainCursor(p.cursorPath)
    if (cur && cur.twinId !== p.twinId) throw new BaseError('the TFChain cursor belongs to another twin', { code: 'TFCHAIN_CURSOR_CORRUPT', meta: { path: p.cursorPath, twinId: cur.twinId } })
    if (!cur) {
      const n = Math.min(p.startBlock ?? fin, fin)
      const hash = (await call('getBlockHash', () => a.rpc.chain.getBlockHash(n), signal)).toHex()
      cur = await bootstrap(a, n, hash, signal)
      saveTfchainCursor(p.cursorPath, cur)
    }
    let delivered = 0
    for (let n = cur.blockNumber + 1; n <= fin && delivered < maxBlocks; n++) {
      signal.throwIfAborted()
      const hash = (await call('getBlockHash', () => a.rpc.chain.getBlockHash(n), signal)).toHex()
      const header = await call('getHeader', () => a.rpc.chain.getHeader(hash), signal)
      if (header.parentHash.toHex() !== cur.blockHash) {
        throw new BaseError('TFChain block does not extend the cursor: another chain, or a reset test chain', {
          code: 'TFCHAIN_CHAIN_MISMATCH',
          details: [`block ${n} has parent ${header.parentHash.toHex()}, the cursor is ${cur.blockNumber} ${cur.blockHash}`],
          meta: { path: p.cursorPath },
        })
      }
      const { raw, at } = await rawEvents(a, hash, signal)
      const { events, next } = normalizeEvents(raw, cur, { blockNumber: n, blockHash: hash, at, nodeDownAfterMs })
      await p.deliver(events, next)
      saveTfchainCursor(p.cursorPath, next)
      cur = next
      delivered++
      m.cursor.set(n)
      for (const e of events) m.events.inc({ type: e.type })
    }
    return { delivered, cursor: cur }
  }

  const pollOnce = (signal?: AbortSignal) => {
    const s = signal ? AbortSignal.any([signal, common.signal]) : common.signal
    const run = lock.then(() => poll(s))
    lock = run.catch(() => {})
    return run
  }

  return {
    pollOnce,
    cursor: () => cur,
    start() {
      if (loop) return
      controller = new AbortController()
      const s = AbortSignal.any([controller.signal, common.signal])
      loop = (async () => {
        let failures = 0
        while (!s.aborted) {
          try {
            const r = await pollOnce(s)
            failures = 0
            if (r.delivered >= maxBlocks) continue
          } catch (err) {
            if (s.aborted) break
            failures++
            m.errors.inc()
            log.warn({ err, failures }, 'TFChain poll failed; retrying')
            if (!(err instanceof BaseError && err.retryable)) await disconnect()
          }
          const wait = failures ? Math.min(p.maxBackoffMs ?? 30_000, 500 * 2 ** Math.min(failures, 10)) : (p.pollIntervalMs ?? 6_000)
          await sleep(wait, s).catch(() => {})
        }
      })()
    },
    async stop() {
      controller?.abort()
      await loop
      loop = undefined
      await lock
      await disconnect()
    },
  }
}
