/**
 * Payment facts of a service, kept from the events intake applies instead of read from the chain every tick: each
 * escrow event that changes the payment state carries the state after the change (balance, rate, settledAt, endsAt),
 * so paid-until is computed here exactly as the contract computes it. A bounded verification sweep compares the
 * facts of a rolling slice of services with one `getServices` read and reports every disagreement, which the caller
 * logs, counts and heals from the chain. Pure functions only.
 */
import type { ChainEvent } from '../chain/events.js'
import type { ServiceRecord } from './state.js'

export type PaymentFacts = NonNullable<ServiceRecord['chain']>

/** The escrow record as read from the chain (ServiceView of daemon/ports.ts). */
export type OnchainFacts = { state: string; tier: number; ratePerHour: bigint; balance: bigint; settledAt: bigint; endsAt: bigint }

/** Services verified per tick unless `[loop] verify_per_tick` says otherwise. */
export const defaultVerifyPerTick = 500

const maxU64 = 2n ** 64n - 1n
const big = (s: string | undefined) => (s === undefined ? undefined : BigInt(s))

/** Unix time up to which `balance` pays at `ratePerHour` from `settledAt`, rounded down and capped at 2^64-1 as in the escrow. */
export function paidUntilOf(balance: bigint, ratePerHour: bigint, settledAt: bigint): bigint {
  if (ratePerHour <= 0n) return maxU64
  const until = settledAt + (balance * 3600n) / ratePerHour
  return until > maxU64 ? maxU64 : until
}

/** Paid-until from the facts: 0 when the service is not active on chain (as the escrow's view); undefined when unknown. */
export function paidUntilFromFacts(f: PaymentFacts | undefined): bigint | undefined {
  if (!f?.onchainState) return undefined
  if (f.onchainState !== 'active') return 0n
  const balance = big(f.balance)
  const rate = big(f.ratePerHour)
  const settledAt = big(f.settledAt)
  if (balance === undefined || rate === undefined || settledAt === undefined) return undefined
  return paidUntilOf(balance, rate, settledAt)
}

/** What a settlement at `now` would move to the operator (the escrow's `accruedNow`); undefined when unknown. */
export function accruedFromFacts(f: PaymentFacts | undefined, now: bigint): bigint | undefined {
  if (!f?.onchainState) return undefined
  if (f.onchainState !== 'active') return 0n
  const balance = big(f.balance)
  const rate = big(f.ratePerHour)
  const settledAt = big(f.settledAt)
  const endsAt = big(f.endsAt)
  if (balance === undefined || rate === undefined || settledAt === undefined || endsAt === undefined) return undefined
  const t = now > endsAt ? endsAt : now
  if (t <= settledAt) return 0n
  const accrued = (rate * (t - settledAt)) / 3600n
  return accrued > balance ? balance : accrued
}

/** The facts after one escrow event of this service (a new object; `f` is not changed). Other events leave them as they are. */
export function applyEventToFacts(f: PaymentFacts | undefined, e: ChainEvent): PaymentFacts {
  const next: PaymentFacts = { ...f, asOfBlock: e.blockNumber.toString() }
  switch (e.type) {
    case 'ServiceInitiated':
      Object.assign(next, { onchainState: 'requested', balance: e.deposit.toString(), ratePerHour: e.ratePerHour.toString(), tier: e.tier, settledAt: '0', endsAt: '0' })
      break
    case 'ServiceActivated':
      Object.assign(next, { onchainState: 'active', activatedAt: e.activatedAt.toString(), settledAt: e.activatedAt.toString(), endsAt: e.endsAt.toString() })
      break
    case 'PaymentReceived':
      Object.assign(next, { balance: e.balance.toString(), settledAt: e.settledAt.toString() })
      break
    case 'TierChanged':
      Object.assign(next, { tier: e.tier, ratePerHour: e.ratePerHour.toString(), balance: e.balance.toString(), settledAt: e.settledAt.toString() })
      break
    case 'Withdrawn':
      Object.assign(next, { balance: e.balance.toString(), settledAt: e.settledAt.toString() })
      break
    case 'Refunded':
      // refund() closes; terminate() emits Refunded then ServiceTerminated, which sets 'terminated' right after
      Object.assign(next, { onchainState: 'closed', balance: '0' })
      break
    case 'ServiceTerminated':
      Object.assign(next, { onchainState: 'terminated', balance: '0' })
      break
    default:
      return f ?? {}
  }
  const paidUntil = paidUntilFromFacts(next)
  if (paidUntil !== undefined) next.paidUntil = paidUntil.toString()
  return next
}

/** The facts of an escrow record as read from the chain. */
export function factsFromOnchain(o: OnchainFacts, asOfBlock?: bigint): PaymentFacts {
  const f: PaymentFacts = {
    onchainState: o.state,
    balance: o.balance.toString(),
    ratePerHour: o.ratePerHour.toString(),
    settledAt: o.settledAt.toString(),
    endsAt: o.endsAt.toString(),
    tier: o.tier,
    ...(asOfBlock !== undefined && { asOfBlock: asOfBlock.toString() }),
  }
  f.paidUntil = (paidUntilFromFacts(f) ?? 0n).toString()
  return f
}

/**
 * The escrow record as the facts tell it, when they are complete and the chain has started metering (active, or
 * ended); undefined otherwise (a record from before the facts were kept, or an activation intake has not seen yet):
 * then read the chain instead.
 */
export function viewFromFacts(f: PaymentFacts | undefined): OnchainFacts | undefined {
  if (!f?.onchainState || !['active', 'terminated', 'closed'].includes(f.onchainState)) return undefined
  if (f.balance === undefined || f.ratePerHour === undefined || f.settledAt === undefined || f.endsAt === undefined || f.tier === undefined) return undefined
  return { state: f.onchainState, tier: f.tier, ratePerHour: BigInt(f.ratePerHour), balance: BigInt(f.balance), settledAt: BigInt(f.settledAt), endsAt: BigInt(f.endsAt) }
}

export type Disagreement = {
  serviceId: string
  /** 'exists' when the chain does not know the service; otherwise the fact that differs. */
  field: 'exists' | 'onchainState' | 'balance' | 'ratePerHour' | 'settledAt' | 'endsAt' | 'tier'
  record: string | undefined
  chain: string | undefined
}

type Compared = Exclude<Disagreement['field'], 'exists'>
const live: Compared[] = ['onchainState', 'balance', 'ratePerHour', 'settledAt', 'endsAt', 'tier']
/** An ended service settles without an event that carries settledAt: only its state and (zero) balance are compared. */
const ended: Compared[] = ['onchainState', 'balance']

/**
 * Compare the facts of a slice of services with the escrow records read for them (`onchain[i]` belongs to
 * `slice[i]`; undefined when the chain does not know the service). Read the records at the block up to which the
 * facts were applied (the follower's cursor, `atBlock`): then every difference is drift, not lag; facts applied from
 * a later block are skipped.
 */
export function verifySlice(
  slice: ReadonlyArray<{ serviceId: string; facts: PaymentFacts | undefined }>,
  onchain: ReadonlyArray<OnchainFacts | undefined>,
  atBlock?: bigint,
): Disagreement[] {
  const out: Disagreement[] = []
  slice.forEach(({ serviceId, facts }, i) => {
    // facts newer than the read (intake went on meanwhile) are not compared with an older record
    if (atBlock !== undefined && facts?.asOfBlock !== undefined && BigInt(facts.asOfBlock) > atBlock) return
    const o = onchain[i]
    if (!o || o.state === 'none') {
      out.push({ serviceId, field: 'exists', record: facts?.onchainState, chain: undefined })
      return
    }
    const want = factsFromOnchain(o)
    const fields = o.state === 'terminated' || o.state === 'closed' ? ended : live
    for (const field of fields) {
      const a = facts?.[field]
      const b = want[field]
      if (a === undefined || String(a) !== String(b)) out.push({ serviceId, field, record: a === undefined ? undefined : String(a), chain: b === undefined ? undefined : String(b) })
    }
  })
  return out
}

/**
 * The next `size` ids from `start`, wrapping around, and where the following slice starts: every service is
 * verified once per ⌈n / size⌉ ticks, and a tick reads at most `size` records.
 */
export function rollingSlice<T>(ids: readonly T[], start: number, size: number): { slice: T[]; next: number } {
  const n = ids.length
  if (n === 0 || size <= 0) return { slice: [], next: 0 }
  const from = ((start % n) + n) % n
  if (size >= n) return { slice: [...ids.slice(from), ...ids.slice(0, from)], next: from }
  const end = from + size
  const slice = end <= n ? ids.slice(from, end) : [...ids.slice(from), ...ids.slice(0, end - n)]
  return { slice, next: end % n }
}
