/**
 * Follow the logs of the operator's contracts: deliver only blocks with enough confirmations, in order, one batch at
 * a time together with the cursor (the last block fully delivered) so the daemon can persist both atomically. Before
 * extending past the cursor the next block's parent hash must equal the cursor's hash; otherwise the follower rewinds
 * to the deepest block it delivered that is still canonical and delivers again from there (the daemon dedupes by
 * event identity). RPC failures are retried with backoff; the loop never throws.
 *
 * With `maxInFlight` > 1 the follower reads the next range while earlier deliveries are still being made durable
 * (their commits then group together). Deliveries are still made one after the other, in block order, each with
 * the cursor it extends; the follower awaits every one of them in order before it counts a block delivered, and a
 * failed delivery sends it back to the last block whose delivery (and every one before it) succeeded.
 */
import { BlockNotFoundError, LimitExceededRpcError, type Address, type Hex, type Log, type PublicClient } from 'viem'
import type { Common } from '../../core/common.js'
import { BaseError, walk } from '../../core/errors.js'
import { sleep, withTimeout } from '../../core/retry.js'
import type { ChainEvent } from '../events.js'
import { decodeLog, logIdentity } from './decode.js'
import { ChainMovedError, classifyRpcError } from './errors.js'
import { scopedSignal, withScopedSignal } from './signal.js'

/** The last block fully delivered. */
export type Cursor = { blockNumber: bigint; blockHash: Hex }

export type EvmFollowerParameters = {
  publicClient: PublicClient
  chainId: number
  /** Contracts whose logs are followed (the registry and the escrow). */
  addresses: Address[]
  /** Blocks a block must have on top of it before it is delivered (0 = deliver the head). */
  confirmations: number
  /** Pause between polls when caught up, ms. */
  pollIntervalMs: number
  /** First block to deliver when there is no cursor (the contracts' deployment block). */
  startBlock: bigint
  /** Largest block range per getLogs call. Default 500. */
  maxBlockRange?: number
  /** Timeout of each RPC call, ms. Default 15_000. */
  rpcTimeoutMs?: number
  /** Largest backoff after repeated failures, ms. Default 30_000. */
  maxBackoffMs?: number
  /** How far back to restart when no delivered block in memory is still canonical. Default 128. */
  maxReorgDepth?: number
  /**
   * Deliveries that may be in flight at once (default 1: each is awaited before the next range is read). Above 1,
   * `deliver` must not let a delivery's effects become durable unless the one before it (`after`) did.
   */
  maxInFlight?: number
  loadCursor(): Promise<Cursor | undefined>
  /**
   * Persist the batch's effects together with `cursor`; throwing makes the follower retry from the same block.
   * Called for every range read, also without events, so that the cursor advances. `after` is the cursor this
   * delivery extends (the previous delivery's, or the loaded one; undefined when starting from `startBlock`).
   */
  deliver(events: ChainEvent[], cursor: Cursor, after: Cursor | undefined): Promise<void>
}

export type EvmFollower = {
  /** Run the polling loop until `stop()` or `common.signal` aborts. */
  start(): void
  stop(): Promise<void>
  /** Deliver everything confirmed up to the current head; throws on failure (the loop retries). */
  pollOnce(signal?: AbortSignal): Promise<void>
  /** True since the node last answered eth_chainId with another chain (until it answers the right one again). */
  chainIdMismatch(): boolean
}

/** Delivered block points kept in memory to find the common ancestor after a reorg. */
const windowSize = 64

/** Create a follower; nothing happens until `start()` or `pollOnce()`. */
export function createEvmFollower(common: Common, p: EvmFollowerParameters): EvmFollower {
  const bad: string[] = []
  if (p.addresses.length === 0) bad.push('addresses: empty, expected the registry and escrow addresses')
  if (!Number.isInteger(p.confirmations) || p.confirmations < 0) bad.push(`confirmations: got ${p.confirmations}, expected an integer >= 0`)
  if (!(p.pollIntervalMs > 0)) bad.push(`pollIntervalMs: got ${p.pollIntervalMs}, expected > 0`)
  if (p.maxInFlight !== undefined && (!Number.isInteger(p.maxInFlight) || p.maxInFlight < 1)) bad.push(`maxInFlight: got ${p.maxInFlight}, expected an integer >= 1`)
  if (p.startBlock < 0n) bad.push(`startBlock: got ${p.startBlock}, expected >= 0`)
  if (bad.length) throw new BaseError('invalid chain follower options', { code: 'INVALID_OPTIONS', details: bad })
  const log = common.logger.child({ chainId: p.chainId })
  const labels = { chain_id: p.chainId }
  const c = ['chain_id']
  const m = {
    head: common.metrics.gauge('chain_head_block', 'Latest block number reported by the RPC node', { labels: c }),
    cursor: common.metrics.gauge('chain_cursor_block', 'Last block fully delivered to the daemon', { labels: c }),
    lag: common.metrics.gauge('chain_lag_blocks', 'Head minus cursor, blocks', { labels: c }),
    polled: common.metrics.gauge('chain_last_poll_timestamp_seconds', 'When the follower last completed a poll (caught up to the head it read), unix seconds', { labels: c }),
    rpcErrors: common.metrics.counter('chain_rpc_errors_total', 'Failed RPC calls of the chain follower', { labels: [...c, 'method'] }),
    deliverErrors: common.metrics.counter('chain_deliver_errors_total', 'Batches whose delivery threw (retried)', { labels: c }),
    reorgs: common.metrics.counter('chain_reorgs_total', 'Reorgs detected below the cursor', { labels: c }),
    malformed: common.metrics.counter('chain_malformed_events_total', 'Logs that did not decode and were skipped', { labels: c }),
    seen: common.metrics.counter('chain_events_seen_total', "Logs of the operator's contracts read from confirmed blocks (decoded or not)", { labels: c }),
    failed: common.metrics.counter('chain_events_failed_total', 'Events that failed: did not decode (skipped) or whose batch delivery threw (retried)', { labels: [...c, 'stage'] }),
    events: common.metrics.counter('chain_events_delivered_total', 'Events delivered to the daemon', { labels: c }),
  }
  const maxRange = BigInt(Math.max(1, p.maxBlockRange ?? 500))
  const rpcTimeout = p.rpcTimeoutMs ?? 15_000
  const maxBackoff = p.maxBackoffMs ?? 30_000
  const maxReorgDepth = BigInt(p.maxReorgDepth ?? 128)
  const confirmations = BigInt(p.confirmations)
  const maxInFlight = p.maxInFlight ?? 1

  let loaded = false
  let cursor: Cursor | undefined
  let recent: Cursor[] = []
  let range = maxRange
  let warnedAhead = false
  let lock: Promise<unknown> = Promise.resolve()
  let controller: AbortController | undefined
  let loop: Promise<void> | undefined
  let mismatch = false

  const rpc = async <T>(what: string, fn: () => Promise<T>, signal: AbortSignal): Promise<T> => {
    try {
      return await withScopedSignal([signal], (s) => withTimeout(what, rpcTimeout, () => fn(), s))
    } catch (err) {
      if (signal.aborted) throw err
      m.rpcErrors.inc({ ...labels, method: what })
      throw classifyRpcError(what, err)
    }
  }
  const getBlock = (n: bigint, signal: AbortSignal) =>
    rpc('eth_getBlockByNumber', () => p.publicClient.getBlock({ blockNumber: n, includeTransactions: false }), signal)

  const remember = (c: Cursor) => {
    recent = recent.filter((r) => r.blockNumber < c.blockNumber)
    recent.push(c)
    if (recent.length > windowSize) recent = recent.slice(-windowSize)
  }

  /** Move the cursor back to the deepest remembered block that is still canonical. */
  const rewind = async (signal: AbortSignal, why: Record<string, unknown>) => {
    m.reorgs.inc(labels)
    log.error({ ...why, cursor: fmt(cursor) }, 'reorg detected at or below the cursor: rewinding to the last common block')
    for (const point of [...recent].reverse()) {
      if (cursor && point.blockNumber > cursor.blockNumber) continue
      let hash: Hex | undefined
      try {
        hash = (await getBlock(point.blockNumber, signal)).hash ?? undefined
      } catch (err) {
        if (!(walk(err, (e) => e instanceof BlockNotFoundError) instanceof BlockNotFoundError)) throw err
      }
      if (hash === point.blockHash) {
        cursor = point
        recent = recent.filter((r) => r.blockNumber <= point.blockNumber)
        log.warn({ cursor: fmt(cursor) }, 'rewound to a block still on the canonical chain; delivering again from there')
        return
      }
    }
    // nothing remembered survived: restart a safe distance back and let the daemon dedupe what it sees again
    const lowest = recent[0]?.blockNumber ?? cursor?.blockNumber ?? p.startBlock
    const base = lowest - maxReorgDepth
    if (base < p.startBlock) cursor = undefined
    else {
      const b = await getBlock(base, signal)
      cursor = { blockNumber: base, blockHash: b.hash! }
    }
    recent = cursor ? [cursor] : []
    log.error({ cursor: fmt(cursor), depth: maxReorgDepth.toString() }, 'no delivered block is canonical any more: the reorg is deeper than the confirmations; delivering again from further back')
  }

  const decodeAll = (logs: Log[]): ChainEvent[] => {
    const out: ChainEvent[] = []
    for (const l of logs) {
      try {
        out.push(decodeLog(l, p.chainId))
      } catch (err) {
        m.malformed.inc(labels)
        m.failed.inc({ ...labels, stage: 'decode' })
        log.error({ err, event: logIdentity(l, p.chainId) }, 'skipping a log that does not decode')
      }
    }
    return out
  }

  /**
   * Nothing is delivered from a node on another chain (a wrong `rpc_url`, a node behind a load balancer swapped for
   * one on another network): asked on every poll, in the same JSON-RPC batch as the head. CHAIN_ID_MISMATCH fails
   * the poll (retried).
   */
  const checkChain = async (signal: AbortSignal) => {
    const id = await rpc('eth_chainId', () => p.publicClient.getChainId(), signal)
    mismatch = id !== p.chainId
    if (mismatch)
      throw new BaseError(`the RPC node serves chain ${id}, not chain ${p.chainId}: nothing is read from it`, {
        code: 'CHAIN_ID_MISMATCH',
        retryable: true,
        details: [`expected chain id ${p.chainId} ([chain] chain_id), the node at [chain] rpc_url answers ${id}`],
      })
  }

  // deliveries made but not yet settled, oldest first (polls never overlap: they run under `lock`)
  type InFlight = { done: Promise<void>; after: Cursor | undefined; cursor: Cursor; events: number; head: bigint }
  let inflight: InFlight[] = []
  const settleOldest = async () => {
    const d = inflight.shift()!
    try {
      await d.done
    } catch (err) {
      // the deliveries after it extend it (and are refused): let them settle, then read again from the block it
      // extended, the last one whose delivery and every one before it succeeded
      await Promise.allSettled(inflight.map((x) => x.done))
      inflight = []
      cursor = d.after
      recent = d.after ? recent.filter((r) => r.blockNumber <= d.after!.blockNumber) : []
      throw err
    }
    m.events.inc(labels, d.events)
    m.cursor.set(Number(d.cursor.blockNumber), labels)
    m.lag.set(Number(d.head - d.cursor.blockNumber), labels)
  }
  const drain = async () => {
    while (inflight.length) await settleOldest()
  }

  const pollUnlocked = async (signal: AbortSignal) => {
    try {
      await extend(signal)
    } finally {
      // a failed read or an abort with deliveries in flight: they settle before the poll ends
      await drain().catch(() => undefined)
    }
  }

  const extend = async (signal: AbortSignal) => {
    if (!loaded) {
      cursor = await p.loadCursor()
      loaded = true
      recent = cursor ? [cursor] : []
    }
    const [head] = await Promise.all([rpc('eth_blockNumber', () => p.publicClient.getBlockNumber({ cacheTime: 0 }), signal), checkChain(signal)])
    m.head.set(Number(head), labels)
    const safe = head - confirmations
    let progressed = false
    for (;;) {
      if (signal.aborted) return
      const from = cursor ? cursor.blockNumber + 1n : p.startBlock
      if (from > safe) {
        await drain()
        if (cursor && cursor.blockNumber > head && !warnedAhead) {
          warnedAhead = true
          log.warn({ cursor: fmt(cursor), head: head.toString() }, 'the saved cursor is ahead of the node: a lagging node, or a chain reset under the same addresses')
        }
        // nothing new to extend: still make sure the cursor itself was not reorged away
        if (!progressed && cursor && cursor.blockNumber <= head) {
          const current = await getBlock(cursor.blockNumber, signal)
          if (current.hash !== cursor.blockHash) {
            await rewind(signal, { block: cursor.blockNumber.toString(), hash: current.hash })
            progressed = true
            continue
          }
        }
        break
      }
      const to = from + range - 1n < safe ? from + range - 1n : safe
      const fromBlock = await getBlock(from, signal)
      if (cursor && fromBlock.parentHash !== cursor.blockHash) {
        await drain()
        await rewind(signal, { block: from.toString(), parentHash: fromBlock.parentHash })
        continue
      }
      const toBlock = to === from ? fromBlock : await getBlock(to, signal)
      let logs: Log[]
      try {
        logs = await rpc('eth_getLogs', () => p.publicClient.getLogs({ address: p.addresses, fromBlock: from, toBlock: to }), signal)
      } catch (err) {
        if (walk(err, (e) => e instanceof LimitExceededRpcError) && range > 1n) {
          range = range / 2n
          log.warn({ range: range.toString() }, 'the node refused the block range; reading smaller ranges')
          continue
        }
        throw err
      }
      // the range is consistent only if its ends did not change while the logs were read
      const toAgain = await getBlock(to, signal)
      const moved: string[] = []
      if (toAgain.hash !== toBlock.hash) moved.push(`block ${to} changed from ${toBlock.hash} to ${toAgain.hash}`)
      for (const l of logs) {
        if (l.removed) moved.push(`log ${l.transactionHash}:${l.logIndex} was removed`)
        else if (l.blockNumber === from && l.blockHash !== fromBlock.hash) moved.push(`log of block ${from} carries hash ${l.blockHash}`)
        else if (l.blockNumber === to && l.blockHash !== toBlock.hash) moved.push(`log of block ${to} carries hash ${l.blockHash}`)
      }
      if (moved.length) throw new ChainMovedError(moved)
      logs.sort((a, b) => (a.blockNumber! === b.blockNumber! ? a.logIndex! - b.logIndex! : a.blockNumber! < b.blockNumber! ? -1 : 1))
      m.seen.inc(labels, logs.length)
      const events = decodeAll(logs)
      const next: Cursor = { blockNumber: to, blockHash: toBlock.hash! }
      const after = cursor
      const done = (async () => p.deliver(events, next, after))().then(
        () => {
          if (events.length) log.debug({ from: from.toString(), to: to.toString(), events: events.length }, 'delivered')
        },
        (err) => {
          m.deliverErrors.inc(labels)
          m.failed.inc({ ...labels, stage: 'deliver' }, events.length)
          throw err
        },
      )
      done.catch(() => undefined) // awaited in order by settleOldest
      inflight.push({ done, after, cursor: next, events: events.length, head })
      if (from !== to) remember({ blockNumber: from, blockHash: fromBlock.hash! })
      remember(next)
      cursor = next
      progressed = true
      if (range < maxRange) range = range * 2n > maxRange ? maxRange : range * 2n
      if (inflight.length >= maxInFlight) await settleOldest()
    }
    await drain()
    m.lag.set(Number(head - (cursor?.blockNumber ?? p.startBlock - 1n)), labels)
    m.polled.set(Date.now() / 1000, labels)
  }

  const pollOnce = (signal?: AbortSignal): Promise<void> => {
    const run = lock.then(() => withScopedSignal([signal, common.signal], (s) => pollUnlocked(s)))
    lock = run.catch(() => undefined)
    return run
  }

  const runLoop = async (signal: AbortSignal) => {
    let failures = 0
    while (!signal.aborted) {
      try {
        await pollOnce(signal)
        failures = 0
        await sleep(p.pollIntervalMs, signal)
      } catch (err) {
        if (signal.aborted) break
        failures++
        const delay = Math.min(maxBackoff, p.pollIntervalMs * 2 ** Math.min(failures, 16)) * (0.8 + Math.random() * 0.4)
        const level = failures >= 5 ? 'error' : 'warn'
        log[level]({ err, failures, retryInMs: Math.round(delay), code: err instanceof BaseError ? err.code : undefined }, 'chain poll failed; retrying')
        await sleep(delay, signal).catch(() => undefined)
      }
    }
  }

  return {
    pollOnce,
    chainIdMismatch: () => mismatch,
    start() {
      if (loop) return
      controller = new AbortController()
      const scoped = scopedSignal(controller.signal, common.signal)
      loop = runLoop(scoped.signal)
        .finally(() => scoped.dispose())
        .catch((err) => log.error({ err }, 'chain follower loop ended unexpectedly'))
    },
    async stop() {
      controller?.abort()
      await loop
      loop = undefined
      controller = undefined
    },
  }
}

const fmt = (c: Cursor | undefined) => (c ? { blockNumber: c.blockNumber.toString(), blockHash: c.blockHash } : undefined)
