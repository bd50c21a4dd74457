/**
 * provisioning → active: create (or adopt) the deployment on the chosen offer, wait until it is healthy, activate it
 * on chain (the customer pays from then on). A provisioning error that says the offer cannot be had (capacity, quota,
 * region, price, auth) fails over to the next candidate of the placement decision; anything else is retried, then
 * rolled back and refunded.
 */
import { AbortedError, BaseError, isRetryable, reasonOf } from '../../core/errors.js'
import { retry } from '../../core/retry.js'
import type { DeploymentStatus } from '../../provisioners/types.js'
import { faultPoint } from '../../core/faults.js'
import { failoverOf } from '../placement/failover.js'
import { transition } from '../state.js'
import { callOpts, get, move, patch, requestOf, targetOf, type ServiceContext } from './context.js'
import { accrueCost } from './ledger.js'
import { missingOnChain } from './vanished.js'

/** The deploys in flight and the slots that bound how many run at once (`[deploy] concurrency`). */
export type DeployQueue = {
  running: Map<string, { controller: AbortController; promise: Promise<void> }>
  slots: number
  waiters: Array<() => void>
}

export const createDeployQueue = (concurrency: number): DeployQueue => ({ running: new Map(), slots: concurrency, waiters: [] })

async function acquireSlot(q: DeployQueue, signal: AbortSignal) {
  if (signal.aborted) throw new AbortedError('deploy slot', signal.reason)
  if (q.slots > 0) {
    q.slots--
    return
  }
  await new Promise<void>((resolve, reject) => {
    const onAbort = () => {
      const i = q.waiters.indexOf(take)
      if (i >= 0) q.waiters.splice(i, 1)
      reject(new AbortedError('deploy slot', signal.reason))
    }
    const take = () => {
      signal.removeEventListener('abort', onAbort)
      resolve()
    }
    q.waiters.push(take)
    signal.addEventListener('abort', onAbort, { once: true })
  })
}

function releaseSlot(q: DeployQueue) {
  const next = q.waiters.shift()
  if (next) next()
  else q.slots++
}

/** Start the deploy of `id` in the background unless one runs already. */
export function kickDeploy(ctx: ServiceContext, id: string): void {
  const q = ctx.deploys
  if (q.running.has(id) || ctx.stopped()) return
  const controller = new AbortController()
  const signal = AbortSignal.any([ctx.common.signal, controller.signal])
  const promise = deploy(ctx, id, signal)
    .catch((err) => {
      if (signal.aborted) ctx.log.debug({ serviceId: id }, 'deploy interrupted; the recorded state decides what follows')
      else ctx.log.error({ err, serviceId: id }, 'deploy failed; will retry on the next tick')
    })
    .finally(() => {
      q.running.delete(id)
      // after a rollback (or a failover), act at once rather than at the next tick
      const s = get(ctx, id)
      if (s && (s.state === 'refunding' || s.state === 'requested')) ctx.kick(id)
    })
  q.running.set(id, { controller, promise })
}

/** Stop a deploy in flight for `id` and wait until it has let go (before tearing the service down). */
export async function cancelDeploy(ctx: ServiceContext, id: string): Promise<void> {
  const d = ctx.deploys.running.get(id)
  if (!d) return
  d.controller.abort(new Error('service left provisioning'))
  await d.promise
}

/** Not an error: the service left provisioning (terminated, stopped) between two attempts; the deploy just ends. */
class LeftProvisioning extends Error {
  constructor() {
    super('service left provisioning')
  }
}

/** Create or adopt, retried by error class; a failover-class error is thrown at once (another offer may serve). */
async function provisionHealthy(ctx: ServiceContext, id: string, replicas: number, signal: AbortSignal): Promise<DeploymentStatus> {
  const target = targetOf(ctx, get(ctx, id)!)
  return retry(
    async (attempt) => {
      await patch(ctx, id, (s) => {
        if (s.state === 'provisioning') s.intent = { op: 'provision', at: new Date().toISOString(), attempt }
      })
      const cur = get(ctx, id)
      if (!cur || cur.state !== 'provisioning') throw new LeftProvisioning()
      faultPoint('deploy.intent-recorded')
      const st = await target.provisioner.provision(requestOf(ctx, cur, replicas), callOpts(ctx, target, signal))
      if (!st.healthy) throw new BaseError(`deployment ${cur.deploymentId} is not healthy: ${st.detail ?? `${st.replicasReady}/${st.replicasWanted} ready`}`, { code: 'UNHEALTHY', reason: 'UNHEALTHY', retryable: true })
      return st
    },
    {
      attempts: ctx.config.deploy.attempts,
      baseMs: ctx.config.deploy.backoffMs,
      signal,
      shouldRetry: (err) => !failoverOf(err) && isRetryable(err),
      onRetry: (err, attempt, delay) => ctx.log.warn({ serviceId: id, attempt, delayMs: Math.round(delay), err: (err as Error).message }, 'provisioning failed; retrying'),
    },
  )
}

/** The deploy of one service: provision, activate on chain, record `active`. */
export async function deploy(ctx: ServiceContext, id: string, signal: AbortSignal): Promise<void> {
  const s0 = get(ctx, id)
  if (!s0 || s0.state !== 'provisioning') return
  const replicas = s0.spec!.replicas
  let status: DeploymentStatus
  try {
    await acquireSlot(ctx.deploys, signal)
  } catch {
    return // stopping, or the service moved on: it resumes (or is torn down) from its recorded state
  }
  try {
    status = await provisionHealthy(ctx, id, replicas, signal)
  } catch (err) {
    // stopping or superseded (terminated meanwhile): nothing is decided here; the recorded state drives what follows
    if (signal.aborted || err instanceof LeftProvisioning) return
    if (await failOver(ctx, id, err)) return
    const reason = reasonOf(err, 'PROVISION_FAILED')
    ctx.log.error({ serviceId: id, reason, err }, 'provisioning failed for good; rolling back and refunding')
    // the decision is recorded first; the refund step destroys whatever was created before it refunds
    await move(ctx, id, 'refunding', reason, (s) => {
      s.reason = reason
      s.problems = [...(s.decision?.attempts.map((a) => `${a.target} ${a.region}/${a.instanceType}: ${a.error}`) ?? []), (err as BaseError).shortMessage ?? String(err)]
      delete s.intent
    }, (err as BaseError).shortMessage)
    faultPoint('deploy.rollback-recorded')
    return
  } finally {
    releaseSlot(ctx.deploys)
  }
  faultPoint('deploy.healthy')
  await activate(ctx, id, replicas, status, signal)
}

/**
 * A provisioning error of the failover class: block the offer (or its region, or its provider) for a while, destroy
 * what this attempt may have created, and send the service back to placement for the next candidate (true). After
 * `[placement] max_attempts` attempts, the request ends with NO_CAPACITY (false with the reason set by the caller).
 */
async function failOver(ctx: ServiceContext, id: string, err: unknown): Promise<boolean> {
  const f = failoverOf(err)
  const s = get(ctx, id)
  if (!f || !s?.quote) return false
  const q = s.quote
  ctx.placement.block({ provider: q.provider, target: q.target, region: q.region, instanceType: q.instanceType }, f, (err as Error).message)
  ctx.m.failovers.inc({ provider: q.provider, kind: f.kind })
  const attempt = { target: q.target, provider: q.provider, region: q.region, instanceType: q.instanceType, hourlyUsd: q.totalHourlyUsd, kind: f.kind, error: ((err as BaseError).shortMessage ?? String(err)).slice(0, 300), at: new Date().toISOString() }
  const attempts = [...(s.decision?.attempts ?? []), attempt]
  // nothing of this attempt may keep running (or billing) before another offer is tried
  const t = targetOf(ctx, s)
  await t.provisioner.destroy(s.deploymentId, callOpts(ctx, t))
  if (attempts.length >= ctx.config.placement.maxAttempts) {
    await move(ctx, id, 'refunding', 'NO_CAPACITY', (r) => {
      r.reason = 'NO_CAPACITY'
      r.problems = attempts.map((a) => `${a.target} ${a.region}/${a.instanceType} at ${a.hourlyUsd} USD/h: ${a.kind}: ${a.error}`)
      if (r.decision) r.decision = { ...r.decision, attempts }
      delete r.intent
    }, `${attempts.length} offer(s) failed`)
    return true
  }
  ctx.log.warn({ serviceId: id, target: q.target, region: q.region, instanceType: q.instanceType, kind: f.kind, scope: f.scope }, 'offer unavailable; trying the next candidate')
  await move(ctx, id, 'requested', 'failover', (r) => {
    if (r.decision) r.decision = { ...r.decision, attempts }
    delete r.intent
  }, `${q.target} ${q.region}/${q.instanceType}: ${f.kind}`)
  return true
}

/** Healthy: record the intent, activate on chain (charging starts now), then record `active`. */
async function activate(ctx: ServiceContext, id: string, replicas: number, status: DeploymentStatus, signal: AbortSignal) {
  await patch(ctx, id, (s) => {
    if (s.state === 'provisioning') s.intent = { op: 'activate', at: new Date().toISOString(), attempt: 1 }
  })
  if (get(ctx, id)?.state !== 'provisioning') return
  faultPoint('activate.intent-recorded')
  try {
    await retry(() => ctx.escrow.activate(BigInt(id), signal), { attempts: 5, baseMs: 500, signal })
  } catch (err) {
    if ((err as BaseError).code === 'SERVICE_UNKNOWN') {
      await missingOnChain(ctx, id) // throws (next tick retries) until vanished; then the terminating step tears it down
      return
    }
    if ((err as BaseError).code === 'SERVICE_ENDED') {
      // the customer terminated while we provisioned: tear down, withdraw nothing, refund nothing more
      await move(ctx, id, 'terminating', 'ServiceTerminated', (s) => {
        s.reason = 'CUSTOMER_TERMINATED'
      })
      return
    }
    if (!signal.aborted && (err as BaseError).retryable === false) {
      // a revert that no retry can change (e.g. values the contract refuses): roll back and refund rather than
      // retrying every tick while a replica runs unpaid
      ctx.log.error({ serviceId: id, err }, 'activation refused on chain; rolling back and refunding')
      await move(ctx, id, 'refunding', 'PROVISION_FAILED', (s) => {
        s.reason = 'PROVISION_FAILED'
        s.problems = [`activate: ${(err as BaseError).shortMessage ?? String(err)}`]
        delete s.intent
      }, (err as BaseError).shortMessage)
      return
    }
    throw err
  }
  faultPoint('activate.confirmed')
  await ctx.store.update((st) => {
    const rec = st.services[id]
    if (!rec || rec.state !== 'provisioning') return
    rec.replicas = replicas
    accrueCost(rec)
    rec.endpoints = status.endpoints
    rec.health = { failures: 0, restarts: 0, healthy: true, lastCheck: new Date().toISOString() }
    delete rec.intent
    delete rec.missing
    transition(rec, 'active', 'healthy', { detail: status.endpoints.join(' ') })
  })
  ctx.book.set(id, get(ctx, id))
  if (get(ctx, id)?.state === 'active') {
    ctx.m.transitions.inc({ to: 'active' })
    ctx.log.info({ serviceId: id, to: 'active', cause: 'healthy', detail: status.endpoints.join(' ') }, 'active')
  }
}
