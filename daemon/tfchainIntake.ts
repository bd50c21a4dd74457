/**
 * TFChain intake: apply the TFChain watcher's events (chain/substrate/watchTfchain.ts) to the services placed on the
 * threefold target, in one state write per block. Pure state changes only: a lost deployment is recorded as a move
 * back to `requested` with a destroy intent, which the service manager carries out (destroy, then place again).
 *
 * A grid VM is named `<deploymentId>-r<i>`; events name it directly (billed, cancelled) or through the watcher's
 * contracts (grace periods by contract id, nodes down by node id). Delivery is at-least-once, in block order: each
 * service keeps the position (block, event index) of the last event applied, and skips events at or before it.
 */
import type { Logger } from '../core/common.js'
import { usd, type Decimal } from '../core/money.js'
import { billedTft } from '../chain/substrate/billedTft.js'
import type { TfchainContract, TfchainEvent } from '../chain/substrate/events.js'
import { accrueCost, billedByTfchain } from './service/ledger.js'
import { transition, type ServiceRecord, type State } from './state.js'

/** The transition cause (and `grid.lost.why` prefix) of a service whose grid deployment was lost. */
export const GRID_DEPLOYMENT_LOST = 'GRID_DEPLOYMENT_LOST'

export type TfchainIntakeContext = {
  /** USD per TFT now (TFChain's own `tftPriceModule` rate): a bill's USD value is taken at delivery. */
  usdPerTft: Decimal.Value
  /** The twin's live contracts after the block (the watcher's cursor): grace periods and nodes name contracts by id. */
  contracts: Readonly<Record<string, TfchainContract>>
  /**
   * Contract ids the daemon cancelled itself, each recorded before its cancel (provisioners/threefold/ownCancels.ts):
   * their cancellations never move a service.
   */
  ownCancels?: ReadonlySet<string>
  logger: Logger
  now?: Date
}

/** `<deploymentId>` of a replica's deployment name `<deploymentId>-r<i>`, with `i`; undefined for other names. */
export function replicaOf(deploymentName: string | undefined): { deploymentId: string; index: number } | undefined {
  const m = deploymentName ? /^(.+)-r(\d+)$/.exec(deploymentName) : null
  return m ? { deploymentId: m[1]!, index: Number(m[2]) } : undefined
}

const position = (e: TfchainEvent) => `${e.blockNumber}:${e.eventIndex}`
const after = (e: TfchainEvent, last: string | undefined) => {
  if (!last) return true
  const [b, i] = last.split(':').map(Number) as [number, number]
  return e.blockNumber > b || (e.blockNumber === b && e.eventIndex > i)
}

/**
 * Apply one block's (or several blocks') TFChain events in order; returns the ids of the services changed. Bills add
 * their TFT to `ledger.gridTft` and their USD value to `ledger.cloudCostUsd` in any state (the last bill of a
 * cancelled contract included). An active threefold service whose contract enters its grace period, whose contract
 * is cancelled outside the daemon, or whose node goes down, moves back to `requested` (GRID_DEPLOYMENT_LOST) with a
 * destroy intent. A grace period that ends is recorded; a service already moved stays moved.
 */
export function applyTfchainEvents(state: State, events: readonly TfchainEvent[], ctx: TfchainIntakeContext): Set<string> {
  const touched = new Set<string>()
  const now = ctx.now ?? new Date()
  const byDeployment = new Map<string, ServiceRecord>()
  for (const s of Object.values(state.services)) byDeployment.set(s.deploymentId, s)
  const serviceOf = (name: string | undefined) => {
    const r = replicaOf(name)
    const s = r && byDeployment.get(r.deploymentId)
    return s && r ? { s, index: r.index } : undefined
  }
  const nameOf = (contractId: string) => ctx.contracts[contractId]?.deploymentName

  for (const e of events) {
    // the services this event concerns (a node down concerns every service with a contract on it)
    const targets: Array<{ s: ServiceRecord; index: number; contractId?: string }> = []
    switch (e.type) {
      case 'contract-billed':
      case 'contract-cancelled': {
        const hit = serviceOf(e.deploymentName ?? nameOf(e.contractId))
        if (hit) targets.push({ ...hit, contractId: e.contractId })
        break
      }
      case 'grace-period-started':
      case 'grace-period-ended': {
        const hit = serviceOf(nameOf(e.contractId))
        if (hit) targets.push({ ...hit, contractId: e.contractId })
        break
      }
      case 'node-down': {
        const seen = new Set<string>()
        for (const c of Object.values(ctx.contracts)) {
          if (c.kind !== 'node' || c.nodeId !== e.nodeId) continue
          const hit = serviceOf(c.deploymentName)
          if (hit && !seen.has(hit.s.serviceId)) {
            seen.add(hit.s.serviceId)
            targets.push({ ...hit, contractId: c.contractId })
          }
        }
        break
      }
      default:
        continue // contract-created/updated, node-up: nothing to act on
    }
    for (const { s, contractId } of targets) {
      if (!after(e, s.grid?.lastEvent)) {
        ctx.logger.debug({ serviceId: s.serviceId, type: e.type, at: position(e) }, 'TFChain event already applied; skipped')
        continue
      }
      const grid = (s.grid ??= {})
      grid.lastEvent = position(e)
      const log = ctx.logger.child({ serviceId: s.serviceId, tfchainEvent: position(e), type: e.type, ...(contractId && { contractId }) })
      touched.add(s.serviceId)
      s.updatedAt = now.toISOString()
      switch (e.type) {
        case 'contract-billed': {
          const b = billedTft(e, ctx.usdPerTft)
          s.ledger.gridTft = usd(s.ledger.gridTft ?? '0').plus(b.tft).toFixed()
          s.ledger.cloudCostUsd = usd(s.ledger.cloudCostUsd).plus(b.usd).toDecimalPlaces(12).toFixed()
          grid.bills = (grid.bills ?? 0) + 1
          log.info({ tft: b.tft.toFixed(), usd: b.usd.toDecimalPlaces(6).toFixed(), usdPerTft: String(ctx.usdPerTft) }, 'grid contract billed')
          break
        }
        case 'grace-period-started':
          grid.gracePeriod = { contractId: e.contractId, sinceBlock: e.sinceBlock, at: new Date(e.at).toISOString() }
          log.warn({ nodeId: e.nodeId }, "grid contract in its grace period: the twin's TFT cannot pay its bills")
          lose(s, `grace period of contract ${e.contractId} (the twin's TFT could not pay)`, now, log)
          break
        case 'grace-period-ended':
          delete grid.gracePeriod
          grid.graceEnded = { contractId: e.contractId, at: new Date(e.at).toISOString() }
          log.info({ nodeId: e.nodeId, state: s.state }, 'grid contract out of its grace period: the twin was topped up')
          break
        case 'contract-cancelled': {
          const own = ownCancel(s, e.contractId, ctx.ownCancels)
          if (own) {
            log.debug({ why: own }, 'grid contract cancelled by the daemon')
            break
          }
          log.warn('grid contract cancelled outside the daemon')
          lose(s, `contract ${e.contractId} cancelled outside the daemon`, now, log)
          break
        }
        case 'node-down':
          log.warn({ nodeId: e.nodeId, reason: e.reason }, 'a grid node of the service is down')
          lose(s, `node ${e.nodeId} ${e.reason === 'deleted' ? 'deleted' : 'stopped reporting uptime'}`, now, log)
          break
      }
    }
  }
  return touched
}

/** Why a cancellation is the daemon's own (undefined: it is not). */
function ownCancel(s: ServiceRecord, contractId: string, own: ReadonlySet<string> | undefined): string | undefined {
  if (own?.has(contractId)) return 'recorded as the daemon\'s own before the cancel'
  if (s.state !== 'active') return `the service is ${s.state}`
  if (s.intent) return `a ${s.intent.op} is in flight`
  return undefined
}

/** An active threefold service lost its deployment: back to placement, its old deployment destroyed first. */
function lose(s: ServiceRecord, why: string, now: Date, log: Logger) {
  if (s.state !== 'active' || !billedByTfchain(s) || s.intent) {
    log.info({ state: s.state, intent: s.intent?.op }, 'the service is not an active grid service at rest; not moved')
    return
  }
  accrueCost(s, now)
  s.intent = { op: 'destroy', at: now.toISOString(), attempt: 1, detail: `re-placement: ${why}` }
  s.grid = { ...s.grid, lost: { at: now.toISOString(), why } }
  transition(s, 'requested', GRID_DEPLOYMENT_LOST, { detail: why, now })
  log.warn({ why }, 'grid deployment lost: destroying it, then placing the service again')
}
