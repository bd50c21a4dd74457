/**
 * Intake: apply a batch of confirmed chain events to the state, exactly once per event identity. Pure state
 * changes only — side effects (provisioning, transactions) are driven afterwards from the recorded state.
 */
import type { Logger } from '../core/common.js'
import { formatBaseUnits } from '../core/money.js'
import { eventId, type ChainEvent } from '../chain/events.js'
import { requestProblems } from '../chain/evm/decode.js'
import { TierNames } from '../core/spec.js'
import { applyEventToFacts } from './paymentFacts.js'
import { countPayout } from './payouts.js'
import { transition, type Cursor, type ServiceRecord, type State } from './state.js'
import { idsBelow, type ProcessedWithIndex } from './store/draft.js'
import type { Store } from './store/types.js'

export type IntakeContext = {
  /** This operator's address (lowercase); requests for other operators are ignored. */
  operator: string
  chainId: number
  logger: Logger
  now?: Date
  /** The payment token, so logged amounts carry their unit (without it: "<n> base units"). */
  token?: { symbol: string; decimals: number }
}

/** An amount for a log line, always with its unit. */
export function amountText(v: bigint, token?: { symbol: string; decimals: number }): string {
  return token ? `${formatBaseUnits(v, token.decimals)} ${token.symbol}` : `${v} base units`
}

/** DNS-safe deployment id for a service: every resource is named by it. */
export function deploymentIdOf(chainId: number, serviceId: bigint | string): string {
  return `bp-${chainId}-${serviceId}`
}

const add = (a: string, b: bigint) => (BigInt(a) + b).toString()

/** Unix seconds for the log: ISO time where a Date can hold it (paid-until saturates at 2^64-1 on chain). */
const isoSeconds = (sec: bigint) => (sec >= 0n && sec <= 8_640_000_000_000n ? new Date(Number(sec) * 1000).toISOString() : `${sec} (unix s)`)

/** Log lines of one event, carrying its identity: merged into each line (a child logger per event cost more than the event's write). */
const eventLog = (logger: Logger, bound: Record<string, string>) => ({
  info: (o: Record<string, unknown>, msg: string) => logger.info({ ...bound, ...o }, msg),
  warn: (o: Record<string, unknown>, msg: string) => logger.warn({ ...bound, ...o }, msg),
})

/**
 * Apply events in order; returns the ids of services whose state changed. Every escrow event also updates the
 * service's payment facts (`chain`), from which paid-until is computed without reading the chain. A request whose
 * values lie outside the contract's bounds (TTL, deposit, rate, tier) is recorded with its problems, which the quote
 * step turns into a MALFORMED_REQUEST refund.
 */
export function applyEvents(state: State, events: readonly ChainEvent[], ctx: IntakeContext): Set<string> {
  const touched = new Set<string>()
  const now = ctx.now ?? new Date()
  for (const e of events) {
    const id = eventId(e)
    if (state.processed[id]) {
      ctx.logger.debug({ eventId: id, type: e.type }, 'event already acted on; skipped')
      continue
    }
    state.processed[id] = e.blockNumber.toString()
    const log = eventLog(ctx.logger, { eventId: id, type: e.type, block: e.blockNumber.toString() })
    if (e.type === 'BlueprintRegistered') {
      log.info({ blueprintId: e.blueprintId.toString(), name: e.name }, 'blueprint registered')
      continue
    }
    if (e.type === 'ServiceInitiated') {
      if (e.operator.toLowerCase() !== ctx.operator) continue
      const key = e.serviceId.toString()
      const known = state.services[key]
      if (known && !(known.state === 'closed' && known.reason === 'SERVICE_VANISHED')) {
        log.warn({ serviceId: key }, 'service already known; event ignored')
        continue
      }
      // the chain forgot the earlier request (a reorg deeper than the confirmations) and gave its id to a new one:
      // the earlier record was torn down and closed; this request is a service of its own
      if (known) log.warn({ serviceId: key, vanished: { createdAt: known.createdAt, closedAt: known.updatedAt, requestedBy: known.customer } }, 'service id given again after the chain forgot its earlier request; the vanished record is replaced')
      const at = now.toISOString()
      const s: ServiceRecord = {
        serviceId: key,
        blueprintId: e.blueprintId.toString(),
        chainId: e.chainId,
        customer: e.customer.toLowerCase(),
        tierIndex: e.tier,
        ...(e.preferences.ok && { preferences: e.preferences.value }),
        ttlSeconds: e.ttlSeconds.toString(),
        deposit: e.deposit.toString(),
        deploymentId: deploymentIdOf(e.chainId, e.serviceId),
        state: 'requested',
        replicas: 0,
        endpoints: [],
        health: { failures: 0, restarts: 0 },
        ledger: { paid: e.deposit.toString(), earned: '0', withdrawn: '0', refunded: '0', cloudCostUsd: '0' },
        createdAt: at,
        updatedAt: at,
        history: [{ at, from: null, to: 'requested', cause: 'ServiceInitiated', eventId: id }],
        chain: applyEventToFacts(undefined, e),
      }
      const problems = requestProblems(e)
      if (e.tier >= TierNames.length && !problems.some((p) => p.startsWith('tier:')))
        problems.push(`tier: got ${e.tier}, expected 0 (basic), 1 (standard) or 2 (premium)`)
      if (!e.preferences.ok) problems.unshift(`preferences: ${e.preferences.error}`)
      if (problems.length) {
        s.problems = problems
        log.warn({ serviceId: key, problems }, 'malformed request; it will be refunded')
      }
      state.services[key] = s
      touched.add(key)
      log.info({ serviceId: key, blueprintId: s.blueprintId, tier: e.tier, deposit: amountText(e.deposit, ctx.token) }, 'requested')
      continue
    }
    const s = state.services[e.serviceId.toString()]
    if (!s) continue // another operator's service
    touched.add(s.serviceId)
    s.updatedAt = now.toISOString()
    s.chain = applyEventToFacts(s.chain, e)
    switch (e.type) {
      case 'ServiceActivated':
        break
      case 'PaymentReceived':
        s.ledger.paid = add(s.ledger.paid, e.amount)
        log.info({ serviceId: s.serviceId, amount: amountText(e.amount, ctx.token), paidUntil: isoSeconds(e.paidUntil) }, 'payment received')
        break
      case 'TierChanged':
        s.tierIndex = e.tier
        log.info({ serviceId: s.serviceId, tier: e.tier }, 'tier changed')
        break
      // counted once: the daemon may have counted it from its own transaction's receipt already
      case 'Withdrawn':
      case 'Refunded':
        countPayout(s, id, e.type, e.amount)
        break
      case 'ServiceTerminated':
        if (s.state === 'active' || s.state === 'scaled-to-zero' || s.state === 'requested' || s.state === 'provisioning') {
          s.reason = 'CUSTOMER_TERMINATED' // only when it ends the service: a recorded rejection keeps its reason
          transition(s, 'terminating', 'ServiceTerminated', { eventId: id, now })
          log.info({ serviceId: s.serviceId }, 'terminated by the customer')
        }
        break
    }
  }
  return touched
}

/**
 * Forget the identities of events buried deeper than `keepBlocks` under the cursor: the follower never rewinds that
 * far (its reorg window is far smaller), and the state must not grow with every event of months of operation.
 * Identities are recorded in delivery order, which is block order (a reorg re-delivers from a block inside the
 * window), so the scan stops at the first one still kept: O(pruned), not O(all), on every delivery.
 */
export function pruneProcessed(state: State, cursorBlock: bigint, keepBlocks = 10_000n): number {
  const floor = cursorBlock - keepBlocks
  // the store's drafts keep processed ids sorted by block: O(pruned), not a walk over the ids per delivery
  const below = idsBelow in state.processed ? (state.processed as ProcessedWithIndex)[idsBelow] : undefined
  if (below) {
    const ids = below(floor)
    for (const id of ids) delete state.processed[id]
    return ids.length
  }
  let n = 0
  for (const id in state.processed) {
    if (BigInt(state.processed[id]!) >= floor) break
    delete state.processed[id]
    n++
  }
  return n
}

/**
 * Deliveries the chain follower keeps in flight: it reads the next range while earlier deliveries commit, and the
 * deliveries queued meanwhile commit together (one transaction, one fsync) instead of one after the other.
 */
export const deliveriesInFlight = 16

/** Raised inside a delivery's write when the cursor it extends was not saved (an earlier delivery failed). */
export class CursorMovedError extends Error {
  constructor(expected: Cursor | undefined, found: Cursor | undefined) {
    super(`the saved cursor is at ${found?.blockNumber ?? 'none'}, not at ${expected?.blockNumber ?? 'none'} which this delivery extends; the range is read again`)
  }
}

const sameCursor = (a: Cursor | undefined, b: Cursor | undefined) => a?.blockNumber === b?.blockNumber && a?.blockHash === b?.blockHash

/**
 * Writes that move the saved chain cursor, in the order they are queued. Deliveries overlap (the follower reads on
 * while a commit is in flight), so each write saves its changes and its cursor only if the store holds the cursor
 * the write queued before it saves; when that one failed, every write queued after it is refused too. The cursor
 * saved therefore never passes events that were not saved with it or before it.
 */
export function createCursorWriter(store: Store) {
  // the cursor the writes queued so far leave; undefined + !known = the one the store holds
  let queued: Cursor | undefined
  let known = false
  return {
    /** Apply `fn` and save `cursor` in one write; resolves once durable. */
    write<T>(cursor: Cursor, fn: (draft: State) => T): Promise<T> {
      const after = known ? queued : store.read().cursor
      const next = { blockNumber: cursor.blockNumber, blockHash: cursor.blockHash }
      queued = next
      known = true
      return store
        .update((st) => {
          if (!sameCursor(st.cursor, after)) throw new CursorMovedError(after, st.cursor)
          const out = fn(st)
          st.cursor = next
          return out
        })
        .catch((err: unknown) => {
          known = false
          throw err
        })
    },
    /** Forget what was queued (a new follower starts from the cursor the store holds). */
    reset() {
      known = false
    },
  }
}
