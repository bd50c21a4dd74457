/**
 * active / scaled-to-zero, every tick: payment state → replicas. The payment state is the facts intake keeps from the
 * escrow's events (daemon/paymentFacts.ts; verified against the chain by a rolling sweep, service/verify.ts), read
 * from the chain only while they are incomplete (an activation intake has not seen yet, a record from before the
 * facts were kept). End the service at termination or TTL, scale to zero when the payment ran out, back to the
 * tier's replicas on a top-up or a tier change, and heal an unhealthy deployment (restart, then replace, then end it
 * with UNHEALTHY).
 */
import { faultPoint } from '../../core/faults.js'
import { tokenToUsd, usd } from '../../core/money.js'
import { TierNames, type ResourceSpec, type TierName } from '../../core/spec.js'
import { planTier, replicasPaidFor } from '../../core/tiers.js'
import type { ServiceView, Target } from '../ports.js'
import { paidUntilOf, viewFromFacts } from '../paymentFacts.js'
import type { ServiceRecord } from '../state.js'
import { desiredReplicas, utilisationBetween } from '../../core/autoscale.js'
import type { DeploymentStatus } from '../../provisioners/types.js'
import { callOpts, get, iso, MAX_RESTARTS, move, patch, requestOf, targetOf, type ServiceContext } from './context.js'
import { accrueCost } from './ledger.js'
import { terminate } from './terminate.js'
import { missingOnChain } from './vanished.js'

/** A healthy service's ledger is brought up to date at least this often, ms. */
const COST_ACCRUAL_MS = 10 * 60_000

export async function reconcile(ctx: ServiceContext, id: string) {
  const s = get(ctx, id)!
  let onchain: ServiceView | undefined = viewFromFacts(s.chain)
  if (!onchain) {
    onchain = await ctx.escrow.getService(BigInt(id))
    if (!onchain) {
      await missingOnChain(ctx, id)
      return terminate(ctx, id)
    }
    if (s.missing)
      await patch(ctx, id, (r) => {
        delete r.missing
      })
  }
  const now = await ctx.now()
  const paidUntil = onchain.state === 'active' ? paidUntilOf(onchain.balance, onchain.ratePerHour, onchain.settledAt) : 0n
  if (await reachedItsEnd(ctx, id, onchain, now)) return terminate(ctx, id)
  const target = targetOf(ctx, s)
  const tier = TierNames[onchain.tier] ?? s.tier ?? 'basic'
  if (paidUntil <= now) return scaleToZero(ctx, s, target, paidUntil, now)
  const bounds = boundsFor(ctx, s, target, tier, onchain.ratePerHour)
  // between the tier's bounds the load autoscaler owns the count; outside them (or on a new tier) the bounds win
  const autoscaled = loadScaled(ctx, target, bounds) && s.state === 'active' && s.tier === tier
  const want = autoscaled && s.replicas >= bounds.min && s.replicas <= bounds.max ? s.replicas : bounds.min
  if (s.state === 'scaled-to-zero' || s.replicas !== want || s.tier !== tier) {
    ctx.load.delete(id) // a new count or tier: the old readings describe another deployment
    return scaleTo(ctx, s, target, tier, want, paidUntil)
  }
  const healthy = await checkHealth(ctx, s, target, want)
  if (healthy && autoscaled) await scaleOnLoad(ctx, id, target, bounds, healthy)
}

/** Whether the daemon's load autoscaler runs this service: enabled, a tier with room to grow, a target without its own. */
const loadScaled = (ctx: ServiceContext, target: Target, b: { min: number; max: number }) => ctx.config.autoscale.enabled && b.max > b.min && !target.autoscales

/**
 * One autoscaling step (core/autoscale.ts): the CPU reading of this tick against the last one gives a utilisation
 * sample; the policy, over its stabilisation windows, may ask for more or fewer replicas within the tier's bounds
 * (never below what is paid for, never above what the tier and the payment allow).
 */
async function scaleOnLoad(ctx: ServiceContext, id: string, target: Target, b: { min: number; max: number }, st: DeploymentStatus) {
  const s = get(ctx, id)!
  const a = ctx.config.autoscale
  if (!st.usage || !s.spec) return
  const load = ctx.load.get(id) ?? { samples: [] }
  ctx.load.set(id, load)
  const sample = load.last && utilisationBetween(load.last, st.usage, s.spec.vcpu, s.replicas)
  load.last = st.usage
  if (sample) load.samples.push(sample)
  const keep = Date.now() - Math.max(a.scaleUpWindowMs, a.scaleDownWindowMs) - a.maxSampleAgeMs
  while (load.samples.length > 2 && load.samples[1]!.at < keep) load.samples.shift()
  const d = desiredReplicas({
    min: b.min,
    max: b.max,
    current: s.replicas,
    samples: load.samples,
    now: Date.now(),
    target: a.targetUtilisation,
    scaleUpWindowMs: a.scaleUpWindowMs,
    scaleDownWindowMs: a.scaleDownWindowMs,
    tolerance: a.tolerance,
    maxSampleAgeMs: a.maxSampleAgeMs,
  })
  if (d.replicas === s.replicas) return
  ctx.log.info({ serviceId: id, from: s.replicas, to: d.replicas, reason: d.reason, load: sample?.utilisation, wanted: d.wanted }, 'autoscaling on load')
  await patch(ctx, id, (r) => {
    r.intent = { op: 'scale', at: new Date().toISOString(), attempt: 1, detail: String(d.replicas) }
  })
  const after = await target.provisioner.scale(s.deploymentId, d.replicas, callOpts(ctx, target))
  ctx.load.set(id, { samples: [] }) // readings of the old replica set do not describe the new one
  await move(ctx, id, 'active', d.reason === 'up' ? 'autoscale up' : 'autoscale down', (r) => {
    accrueCost(r)
    r.replicas = d.replicas
    r.endpoints = after.endpoints
    delete r.intent
  }, `${s.replicas} → ${d.replicas} replica(s): utilisation ${sample ? sample.utilisation.toFixed(2) : '?'} against ${a.targetUtilisation}`)
}

/** Terminated by the customer or past its TTL: moved to terminating (true). */
async function reachedItsEnd(ctx: ServiceContext, id: string, onchain: ServiceView, now: bigint): Promise<boolean> {
  if (onchain.state === 'terminated' || onchain.state === 'closed') {
    await move(ctx, id, 'terminating', 'ServiceTerminated', (r) => {
      r.reason ??= 'CUSTOMER_TERMINATED'
    })
    return true
  }
  if (onchain.endsAt > 0n && now >= onchain.endsAt) {
    await move(ctx, id, 'terminating', 'TTL_REACHED', (r) => {
      r.reason = 'TTL_REACHED'
    })
    return true
  }
  return false
}

async function scaleToZero(ctx: ServiceContext, s: ServiceRecord, target: Target, paidUntil: bigint, now: bigint) {
  if (s.state !== 'active' && s.replicas === 0) {
    // at zero: kept cloud disks still cost; bring the ledger up to date now and then (a gap counts one hour at most)
    if (s.quote?.stoppedHourlyUsd && (!s.costSince || Date.now() - Date.parse(s.costSince) > COST_ACCRUAL_MS)) await patch(ctx, s.serviceId, (r) => accrueCost(r))
    return
  }
  await patch(ctx, s.serviceId, (r) => {
    r.intent = { op: 'scale', at: new Date().toISOString(), attempt: 1, detail: '0' }
  })
  faultPoint('scale.zero-intent')
  await target.provisioner.scale(s.deploymentId, 0, callOpts(ctx, target))
  faultPoint('scale.zero-done')
  await move(ctx, s.serviceId, 'scaled-to-zero', 'payment expired', (r) => {
    accrueCost(r)
    r.replicas = 0
    r.endpoints = []
    delete r.intent
  }, `paid until ${iso(paidUntil)}, now ${iso(now)}`)
}

/**
 * The replicas the service may run now: the tier's plan (core/tiers.ts) — its minimum, what is paid for, and its
 * autoscaling maximum — clamped by the room its own target has and by what the on-chain rate pays for at the
 * operator's margin.
 */
// replicas a rate pays for, per (rate, price): thousands of services share a few pairs, and the Decimal arithmetic
// allocated several KB per service per tick
const paidFor = new WeakMap<ServiceContext['config'], Map<string, number>>()
function paidForOf(config: ServiceContext['config'], ratePerHour: bigint, quote: NonNullable<ServiceRecord['quote']>): number {
  let memo = paidFor.get(config)
  if (!memo) paidFor.set(config, (memo = new Map()))
  const key = `${ratePerHour}:${quote.totalHourlyUsd}:${quote.replicas}`
  let n = memo.get(key)
  if (n === undefined) {
    const perReplica = usd(quote.totalHourlyUsd).div(Math.max(1, quote.replicas))
    n = replicasPaidFor(tokenToUsd(ratePerHour, config.token.decimals, config.token.usdPerToken), perReplica, config.margin.minPriceToCost)
    if (memo.size >= 4096) memo.clear()
    memo.set(key, n)
  }
  return n
}

function boundsFor(ctx: ServiceContext, s: ServiceRecord, target: Target, tier: TierName, ratePerHour: bigint): { min: number; max: number } {
  const { config } = ctx
  const spec = s.spec
  let fits: number | undefined
  if (spec && target.capacity) {
    const used = ctx.book.usedOn(target.name)
    const own = Math.max(s.replicas, spec.replicas)
    const freeV = target.capacity.vcpu - used.vcpu + spec.vcpu * own
    const freeM = target.capacity.memoryGiB - used.memoryGiB + spec.memoryGiB * own
    fits = Math.min(spec.vcpu > 0 ? freeV / spec.vcpu : Infinity, spec.memoryGiB > 0 ? freeM / spec.memoryGiB : Infinity)
    if (!Number.isFinite(fits)) fits = undefined
  }
  let paysFor: number | undefined
  if (s.quote) {
    const n = paidForOf(config, ratePerHour, s.quote)
    if (Number.isFinite(n)) paysFor = n
  }
  const plan = planTier({ tier, tiers: config.tiers, maxReplicas: config.ceilings.replicas, highAvailability: spec?.highAvailability ?? false, fits, paysFor })
  if (plan.limitedBy.includes('capacity') || plan.limitedBy.includes('payment'))
    ctx.log.warn({ serviceId: s.serviceId, tier, replicas: plan.replicas, fits, paysFor, limitedBy: plan.limitedBy, target: target.name }, 'running fewer replicas than the tier asks')
  return { min: plan.replicas, max: plan.maxReplicas }
}

/** Back from zero, or a new replica count or tier: scale (or re-provision the new tier's spec), record `active`. */
async function scaleTo(ctx: ServiceContext, s: ServiceRecord, target: Target, tier: TierName, want: number, paidUntil: bigint) {
  const { config } = ctx
  await patch(ctx, s.serviceId, (r) => {
    r.intent = { op: 'scale', at: new Date().toISOString(), attempt: 1, detail: String(want) }
  })
  faultPoint('scale.up-intent')
  const plan = planTier({ tier, tiers: config.tiers, maxReplicas: config.ceilings.replicas, highAvailability: s.spec?.highAvailability ?? false })
  const spec: ResourceSpec = { ...s.spec!, tier, replicas: want, minReplicas: want, maxReplicas: Math.max(want, plan.maxReplicas) }
  // a new tier changes more than the count (autoscaling bounds): provision the new spec (idempotent, adopts);
  // the same tier coming back from zero only needs its replicas
  const st =
    s.tier !== tier
      ? await target.provisioner.provision({ ...requestOf(ctx, s, want), spec }, callOpts(ctx, target))
      : await target.provisioner.scale(s.deploymentId, want, callOpts(ctx, target))
  faultPoint('scale.up-done')
  await move(ctx, s.serviceId, 'active', s.state === 'scaled-to-zero' ? 'top-up' : s.tier !== tier ? 'tier changed' : 'replicas', (r) => {
    accrueCost(r)
    r.replicas = want
    r.tier = tier
    r.spec = spec
    r.endpoints = st.endpoints
    r.health.failures = 0
    delete r.intent
  }, `${want} replica(s), paid until ${iso(paidUntil)}`)
}

/** Healthy? Otherwise restart, then replace, then end the service with UNHEALTHY (refunding the rest). Returns the
 * status when the deployment is healthy. */
async function checkHealth(ctx: ServiceContext, s: ServiceRecord, target: Target, want: number): Promise<DeploymentStatus | undefined> {
  const id = s.serviceId
  const st = await target.provisioner.status(s.deploymentId, callOpts(ctx, target))
  const healthy = st.exists && st.healthy && st.replicasReady >= want
  const endpointsMoved = st.endpoints.length !== s.endpoints.length || st.endpoints.some((e, i) => e !== s.endpoints[i])
  // a healthy service with nothing new is not rewritten every tick (10,000 services: 10,000 writes a tick otherwise);
  // its cost is accrued at least every ten minutes (accrueCost counts a gap of more than an hour as one hour)
  const costDue = !s.costSince || Date.now() - Date.parse(s.costSince) > COST_ACCRUAL_MS
  if (!healthy || endpointsMoved || costDue || s.health.healthy !== true || s.health.failures !== 0)
    await patch(ctx, id, (r) => {
      accrueCost(r)
      r.health.lastCheck = new Date().toISOString()
      r.health.healthy = healthy
      r.health.failures = healthy ? 0 : r.health.failures + 1
      r.endpoints = st.endpoints
    })
  const failures = get(ctx, id)!.health.failures
  if (healthy && s.health.restarts > 0 && s.health.lastRestartAt && Date.now() - Date.parse(s.health.lastRestartAt) > 10 * 60_000) {
    await patch(ctx, id, (r) => {
      r.health.restarts = 0 // healthy for ten minutes since the last restart: a fresh start
    })
  }
  if (healthy) return st
  if (failures < ctx.config.deploy.unhealthyTicksBeforeRestart) return undefined
  const restarts = get(ctx, id)!.health.restarts
  if (restarts >= MAX_RESTARTS) {
    // restarts and replacements did not help: stop charging for a service that does not run
    ctx.m.gaveUp.inc()
    ctx.log.error({ serviceId: id, restarts, detail: st.detail }, 'still unhealthy after restarts and replacements; ending the service')
    await move(ctx, id, 'terminating', 'UNHEALTHY', (r) => {
      r.reason = 'UNHEALTHY'
    }, st.detail)
    await terminate(ctx, id)
    return undefined
  }
  ctx.log.warn({ serviceId: id, failures, restarts, detail: st.detail }, 'unhealthy; restarting')
  // counted before the attempt: a replacement that throws (a replica that runs but never answers) still moves the
  // service towards the UNHEALTHY give-up instead of retrying for ever
  await patch(ctx, id, (r) => {
    r.health.restarts++
    r.health.lastRestartAt = new Date().toISOString()
    r.health.failures = 0
  })
  // replace when restarts do not help: provision again (idempotent, adopts what still runs)
  const after =
    !st.exists || restarts >= 3
      ? await target.provisioner.provision(requestOf(ctx, get(ctx, id)!, want), callOpts(ctx, target))
      : await target.provisioner.restart(s.deploymentId, callOpts(ctx, target))
  await patch(ctx, id, (r) => {
    r.health.healthy = after.healthy
    r.endpoints = after.endpoints
  })
  return undefined
}
