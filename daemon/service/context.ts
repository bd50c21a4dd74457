/**
 * The explicit context every lifecycle step of the service manager works over (STYLE.md 11): the config, the store,
 * the chain and the targets, plus the few helpers that every step shares (read, patch, move a record; the target and
 * the deployment request of a service). Built once by `createServiceManager`.
 */
import type { Common } from '../../core/common.js'
import type { CpuReading, UtilisationSample } from '../../core/autoscale.js'
import { BaseError, type ReasonCode } from '../../core/errors.js'
import type { OperatorConfig } from '../config.js'
import type { CallOptions, DeploymentRequest } from '../../provisioners/types.js'
import type { EscrowPort, Target, TargetRegistry } from '../ports.js'
import type { CapacityBook } from '../placement/capacity.js'
import type { Placement } from '../placement/placement.js'
import { transition, type ServiceRecord, type ServiceState } from '../state.js'
import type { Store } from '../store.js'
import type { DeployQueue } from './deploy.js'

export type ServiceMetrics = ReturnType<typeof createServiceMetrics>

export type ServiceContext = {
  common: Common
  log: Common['logger']
  config: OperatorConfig
  store: Store
  escrow: EscrowPort
  targets: TargetRegistry
  placement: Placement
  /** What every target has promised (kept incrementally). */
  book: CapacityBook
  /** Per service: the last CPU reading and the utilisation samples of the load autoscaler (in memory only). */
  load: Map<string, ServiceLoad>
  /** True while the operator drains at run time (besides `[operator] draining`). */
  draining?: () => boolean
  /** Current chain time, unix seconds. */
  now(): Promise<bigint>
  /** False while the RPC node answers for another chain (CHAIN_ID_MISMATCH): no pass decides anything from its reads. */
  chainTrusted?: () => boolean
  m: ServiceMetrics
  deploys: DeployQueue
  /** Queue one step of `id`'s state machine (no-op once stopping). */
  kick(id: string): void
  /** True once the manager is stopping. */
  stopped(): boolean
}

export type ServiceLoad = { last?: CpuReading; samples: UtilisationSample[] }

export const TERMINAL: readonly ServiceState[] = ['closed', 'refunded']
/** Restarts, then replacements, of an unhealthy service before it is ended with UNHEALTHY (and refunded). */
export const MAX_RESTARTS = 6
/** Reads in a row that must miss a service (beside `loop.vanished_after_ms`) before it counts as gone from the chain. */
export const VANISHED_CHECKS = 3

export function createServiceMetrics(common: Common) {
  return {
    transitions: common.metrics.counter('bpo_service_transitions_total', 'Service state transitions by target state'),
    refunds: common.metrics.counter('bpo_refunds_total', 'Refunds sent, by reason code'),
    services: common.metrics.gauge('bpo_services', 'Services by state'),
    ticks: common.metrics.counter('bpo_reconcile_ticks_total', 'Reconcile passes'),
    tickErrors: common.metrics.counter('bpo_reconcile_errors_total', 'Per-service reconcile errors'),
    tickSeconds: common.metrics.histogram('bpo_reconcile_seconds', 'Time to start a reconcile pass, seconds'),
    leaks: common.metrics.counter('bpo_leaked_deployments_total', 'Deployments that could not be destroyed because their target is no longer configured'),
    gaveUp: common.metrics.counter('bpo_unhealthy_given_up_total', 'Services ended because they stayed unhealthy'),
    failovers: common.metrics.counter('bpo_placement_failovers_total', 'Offers given up after a provisioning error, by provider and kind'),
  }
}

/** A request the operator will not serve: refunded with `reason`. */
export class Rejection extends BaseError {
  override name = 'Rejection'
  constructor(reason: ReasonCode, problems: string[]) {
    super(`request rejected: ${reason}`, { code: reason, reason, details: problems })
  }
}

/** Unix seconds as an ISO timestamp, for humans reading the log. */
export const iso = (sec: bigint) => (sec > 8_000_000_000_000n ? `${sec} (unix s)` : new Date(Number(sec) * 1000).toISOString())

export const get = (ctx: ServiceContext, id: string): ServiceRecord | undefined => ctx.store.read().services[id]

/** Record a transition (and `patch`) in one state update, then count and log it. */
export async function move(ctx: ServiceContext, id: string, to: ServiceState, cause: string, patch: (s: ServiceRecord) => void = () => {}, detail?: string) {
  await ctx.store.update((st) => {
    const s = st.services[id]
    if (!s) return
    patch(s)
    if (s.state !== to || to === 'active') transition(s, to, cause, detail ? { detail } : {})
  })
  ctx.book.set(id, ctx.store.read().services[id])
  ctx.m.transitions.inc({ to })
  ctx.log.info({ serviceId: id, to, cause, ...(detail && { detail }) }, to)
}

export async function patch(ctx: ServiceContext, id: string, fn: (s: ServiceRecord) => void) {
  await ctx.store.update((st) => {
    const s = st.services[id]
    if (s) fn(s)
  })
  ctx.book.set(id, ctx.store.read().services[id])
}

/** The target a service was placed on; TARGET_MISSING (retryable) when the operator removed it from the config. */
export function targetOf(ctx: ServiceContext, s: ServiceRecord): Target {
  const t = s.quote && ctx.targets.byName(s.quote.target)
  if (!t) throw new BaseError(`service ${s.serviceId}: target ${s.quote?.target ?? '(none)'} is not configured any more`, { code: 'TARGET_MISSING', retryable: true })
  return t
}

/** What the service's target is asked to run, at `replicas`. */
export function requestOf(ctx: ServiceContext, s: ServiceRecord, replicas: number): DeploymentRequest {
  const t = targetOf(ctx, s)
  const q = s.quote
  return {
    deploymentId: s.deploymentId,
    serviceId: s.serviceId,
    blueprintId: s.blueprintId,
    source: s.source!,
    spec: { ...s.spec!, replicas },
    ...((q?.placement ?? t.placement) && { placement: q?.placement ?? t.placement }),
    ...(q && t.kind === 'cloud' && { offer: { provider: q.provider, region: q.region, instanceType: q.instanceType, spot: q.spot ?? false, hourlyUsd: q.hourlyUsd } }),
  }
}

/** Options of one provisioner call: the health timeout plus a margin, plus the target's boot time (cloud VMs). */
export const callOpts = (ctx: ServiceContext, target?: Target, signal: AbortSignal = ctx.common.signal): CallOptions => ({
  signal,
  timeoutMs: ctx.config.deploy.healthTimeoutMs + 30_000 + (target?.bootTimeoutMs ?? 0),
})
