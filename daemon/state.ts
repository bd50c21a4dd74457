/**
 * The daemon's persisted state: the chain cursor, the identities of events already acted on, and one record per
 * service with its state-machine history and ledger. Amounts are decimal strings of bigint base units.
 */
import type { ReasonCode } from '../core/errors.js'
import type { Preferences, ResourceSpec, TierName } from '../core/spec.js'
import type { BlueprintSource } from '../core/source.js'
import type { Decision } from './placement/placement.js'

export type ServiceState =
  | 'requested'
  | 'provisioning'
  | 'active'
  | 'scaled-to-zero'
  | 'terminating'
  | 'closed'
  | 'refunding'
  | 'refunded'

/** Legal transitions (DESIGN.md, "The life of a service"). */
export const transitions: Record<ServiceState, readonly ServiceState[]> = {
  requested: ['provisioning', 'refunding', 'terminating'],
  // back to requested: the offer failed with a capacity/quota/region/price/auth error and placement tries the next
  provisioning: ['active', 'refunding', 'terminating', 'requested'],
  // back to requested: its grid deployment was lost (contract in grace period or cancelled outside the daemon, node
  // down); the old deployment is destroyed first (a destroy intent), then placement chooses again (GRID_DEPLOYMENT_LOST)
  active: ['scaled-to-zero', 'terminating', 'active', 'requested'],
  'scaled-to-zero': ['active', 'terminating'],
  terminating: ['closed'],
  closed: [],
  refunding: ['refunded'],
  refunded: [],
}

export type Transition = {
  at: string
  from: ServiceState | null
  to: ServiceState
  /** What caused it: an event type, "tick", "deploy", a reason code. */
  cause: string
  eventId?: string
  detail?: string
}

export type QuoteRecord = {
  provider: string
  target: string
  region: string
  instanceType: string
  placement?: string
  hourlyUsd: string
  totalHourlyUsd: string
  replicas: number
  source: string
  /** Bought at the spot price. */
  spot?: boolean
  /** What one replica's kept disk costs while the service is at zero (clouds), USD per hour. */
  stoppedHourlyUsd?: string
  /** The price was confirmed live with the provider's API before buying (else the catalog's). */
  priceConfirmed?: boolean
}

export type ServiceRecord = {
  serviceId: string
  blueprintId: string
  chainId: number
  customer: string
  tierIndex: number
  tier?: TierName
  preferences?: Preferences
  ttlSeconds: string
  deposit: string
  deploymentId: string
  state: ServiceState
  reason?: ReasonCode
  problems?: string[]
  spec?: ResourceSpec
  /** The blueprint source chosen to run. */
  source?: BlueprintSource
  quote?: QuoteRecord
  /** Placement's decision: the winner, the runners-up, the rejected classes, the failed attempts. */
  decision?: Decision
  /** Replicas currently asked of the target (0 when scaled to zero). */
  replicas: number
  endpoints: string[]
  /** Pending side effect, written before it is attempted (intent first). */
  intent?: { op: 'provision' | 'destroy' | 'scale' | 'activate' | 'refund' | 'withdraw'; at: string; attempt: number; detail?: string }
  /**
   * Chain facts last seen (unix seconds, base units): kept from the events intake applies (daemon/paymentFacts.ts),
   * so that paid-until is known without reading the chain; `asOfBlock` is the block of the last event applied.
   */
  chain?: {
    activatedAt?: string
    endsAt?: string
    paidUntil?: string
    ratePerHour?: string
    balance?: string
    onchainState?: string
    settledAt?: string
    tier?: number
    asOfBlock?: string
  }
  health: { failures: number; restarts: number; lastCheck?: string; healthy?: boolean; lastRestartAt?: string }
  ledger: { paid: string; earned: string; withdrawn: string; refunded: string; cloudCostUsd: string; /** Replicas × hours run so far (autoscaling included). */ replicaHours?: string; /** TFT billed by TFChain for the service's grid contracts (their USD value at billing time is in cloudCostUsd). */ gridTft?: string }
  /** Event ids (chainId:txHash:logIndex) of the payouts counted in the ledger (from a receipt or the follower). */
  paidOut?: string[]
  /** The chain did not know the service at the last reads: since when, and how many reads in a row. */
  missing?: { since: string; checks: number }
  /** What TFChain reported of the service's grid contracts (daemon/tfchainIntake.ts). */
  grid?: GridFacts
  /** Since when the capacity cost has not been added to the ledger yet (ISO time). */
  costSince?: string
  createdAt: string
  updatedAt: string
  history: Transition[]
}

export type GridFacts = {
  /** The last TFChain event applied to this service, `<blockNumber>:<eventIndex>`: events at or before it are skipped. */
  lastEvent?: string
  /** A contract of the service is in its grace period (the twin's TFT could not pay a bill). */
  gracePeriod?: { contractId: string; sinceBlock: number; at: string }
  /** The last grace period that ended (the twin was topped up). */
  graceEnded?: { contractId: string; at: string }
  /** Bills counted in the ledger. */
  bills?: number
  /** The last loss of the deployment that sent the service back to placement. */
  lost?: { at: string; why: string }
}

export type Cursor = { blockNumber: string; blockHash: string }

export type State = {
  version: 1
  operatorId: string
  chainId: number
  cursor?: Cursor
  /** eventId -> block number, of every event acted on. */
  processed: Record<string, string>
  services: Record<string, ServiceRecord>
}

export function emptyState(operatorId: string, chainId: number): State {
  return { version: 1, operatorId, chainId, processed: {}, services: {} }
}

export class IllegalTransitionError extends Error {
  constructor(serviceId: string, from: ServiceState, to: ServiceState) {
    super(`service ${serviceId}: illegal transition ${from} -> ${to}`)
  }
}

/** Move a service to `to`, recording the transition. Throws on an illegal move. */
export function transition(s: ServiceRecord, to: ServiceState, cause: string, extra: { eventId?: string; detail?: string; now?: Date } = {}): void {
  if (!transitions[s.state].includes(to)) throw new IllegalTransitionError(s.serviceId, s.state, to)
  const at = (extra.now ?? new Date()).toISOString()
  s.history.push({ at, from: s.state, to, cause, ...(extra.eventId && { eventId: extra.eventId }), ...(extra.detail && { detail: extra.detail }) })
  s.state = to
  s.updatedAt = at
}
