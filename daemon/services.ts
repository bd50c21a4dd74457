/**
 * The service manager: drives every service through the state machine of DESIGN.md. The reconcile tick (30 s by
 * default) reads each service's payment state from the escrow and scales, wakes, terminates or heals it; requests
 * are quoted and handed to the deploy queue; failures are rolled back and refunded. Every transition and every
 * pending side effect (intent) is written to the store before the side effect is attempted.
 */
import type { Common } from '../core/common.js'
import { AbortedError, BaseError, isRetryable, reasonOf, type ReasonCode } from '../core/errors.js'
import { paidUntil as paidUntilOf, tokenToUsd, usd, type Decimal } from '../core/money.js'
import { reduce, TierNames, type ResourceSpec, type TierName } from '../core/spec.js'
import { retry, sleep } from '../core/retry.js'
import type { OperatorConfig } from '../config/load.js'
import { cheapest } from '../pricing/select.js'
import type { BlueprintSource, DeploymentRequest, DeploymentStatus } from '../provisioners/types.js'
import type { EscrowPort, Target, TargetRegistry } from './ports.js'
import { transition, type ServiceRecord, type ServiceState, type State } from './state.js'
import type { Store } from './store.js'

export type ServiceManager = {
  /** Act on one service now (after an event), without waiting for the next tick. */
  kick(serviceId: string): void
  /** One reconcile pass over every service; resolves when all per-service work of this pass settled. */
  tick(): Promise<void>
  start(): void
  /** Stop ticking and wait for work in flight (bounded by the shutdown grace period). */
  stop(): Promise<void>
  /** Resolves when no service work is in flight or queued. */
  idle(): Promise<void>
}

export type CreateServiceManagerParameters = {
  config: OperatorConfig
  store: Store
  escrow: EscrowPort
  targets: TargetRegistry
  /** Current chain time, unix seconds (the later of the latest block's timestamp and the wall clock). */
  now(): Promise<bigint>
  /** Run-time drain (operator action): true refuses new requests like `operator.draining`. */
  draining?(): boolean
  /** Called when a reconcile pass has settled, with its duration in seconds. */
  onTick?(seconds: number): void
}

const TERMINAL: readonly ServiceState[] = ['closed', 'refunded']

/** Restarts, then replacements, of an unhealthy service before it is ended with UNHEALTHY (and refunded). */
const MAX_RESTARTS = 6
/** Reads in a row that must miss a service (beside `loop.vanished_after_ms`) before it counts as gone from the chain. */
const VANISHED_CHECKS = 3

/** Unix seconds as an ISO timestamp, for humans reading the log. */
const iso = (sec: bigint) => (sec > 8_000_000_000_000n ? `${sec} (unix s)` : new Date(Number(sec) * 1000).toISOString())

/** Replicas a tier runs while paid (high availability means two at least). */
export function replicasFor(config: OperatorConfig, tier: TierName, spec?: ResourceSpec): number {
  const base = config.tiers[tier].minReplicas
  return Math.min(spec?.highAvailability ? Math.max(base, 2) : base, config.ceilings.replicas)
}

/**
 * Add the capacity's cost since the last accrual (hourly USD × replicas running meanwhile) to the ledger. Called
 * before every change of the replica count and at each reconcile; a gap longer than an hour (the daemon was down)
 * is counted as one hour at most rather than billed blindly.
 */
export function accrueCost(r: ServiceRecord, at = new Date()): void {
  if (r.costSince && r.replicas > 0 && r.quote) {
    const ms = Math.min(Math.max(0, at.getTime() - Date.parse(r.costSince)), 3_600_000)
    r.ledger.cloudCostUsd = usd(r.ledger.cloudCostUsd).plus(usd(r.quote.hourlyUsd).mul(r.replicas).mul(ms).div(3_600_000)).toDecimalPlaces(12).toFixed()
  }
  r.costSince = at.toISOString()
}

class Rejection extends BaseError {
  override name = 'Rejection'
  constructor(reason: ReasonCode, problems: string[]) {
    super(`request rejected: ${reason}`, { code: reason, reason, details: problems })
  }
}

export function createServiceManager(common: Common, p: CreateServiceManagerParameters): ServiceManager {
  const log = common.logger
  const { config, store, escrow, targets } = p
  const inFlight = new Map<string, Promise<void>>()
  const again = new Set<string>()
  const deploying = new Map<string, { controller: AbortController; promise: Promise<void> }>()
  let deploySlots = config.deploy.concurrency
  const slotWaiters: Array<() => void> = []
  let timer: NodeJS.Timeout | undefined
  let stopped = false

  const m = {
    transitions: common.metrics.counter('bpo_service_transitions_total', 'Service state transitions by target state'),
    refunds: common.metrics.counter('bpo_refunds_total', 'Refunds sent, by reason code'),
    services: common.metrics.gauge('bpo_services', 'Services by state'),
    ticks: common.metrics.counter('bpo_reconcile_ticks_total', 'Reconcile passes'),
    tickErrors: common.metrics.counter('bpo_reconcile_errors_total', 'Per-service reconcile errors'),
    tickSeconds: common.metrics.histogram('bpo_reconcile_seconds', 'Time to start a reconcile pass, seconds'),
    leaks: common.metrics.counter('bpo_leaked_deployments_total', 'Deployments that could not be destroyed because their target is no longer configured'),
    gaveUp: common.metrics.counter('bpo_unhealthy_given_up_total', 'Services ended because they stayed unhealthy'),
  }

  const get = (id: string): ServiceRecord | undefined => store.read().services[id]

  async function move(id: string, to: ServiceState, cause: string, patch: (s: ServiceRecord) => void = () => {}, detail?: string) {
    await store.update((st) => {
      const s = st.services[id]
      if (!s) return
      patch(s)
      if (s.state !== to || to === 'active') transition(s, to, cause, detail ? { detail } : {})
    })
    m.transitions.inc({ to })
    log.info({ serviceId: id, to, cause, ...(detail && { detail }) }, to)
  }

  async function patch(id: string, fn: (s: ServiceRecord) => void) {
    await store.update((st) => {
      const s = st.services[id]
      if (s) fn(s)
    })
  }

  /** Run `fn` for one service, never two at once for the same service. */
  function serial(id: string, fn: () => Promise<void>): Promise<void> {
    const cur = inFlight.get(id)
    if (cur) {
      again.add(id)
      return cur
    }
    const run = (async () => {
      try {
        await fn()
      } catch (err) {
        if (common.signal.aborted) log.debug({ serviceId: id, err: (err as Error).message }, 'service work interrupted by shutdown')
        else {
          m.tickErrors.inc()
          log.error({ err, serviceId: id }, 'service work failed; will retry on the next tick')
        }
      } finally {
        inFlight.delete(id)
        if (again.delete(id) && !stopped) void serial(id, () => step(id))
      }
    })()
    inFlight.set(id, run)
    return run
  }

  function targetOf(s: ServiceRecord): Target {
    const t = s.quote && targets.byName(s.quote.target)
    if (!t) throw new BaseError(`service ${s.serviceId}: target ${s.quote?.target ?? '(none)'} is not configured any more`, { code: 'TARGET_MISSING', retryable: true })
    return t
  }

  const callOpts = () => ({ signal: common.signal, timeoutMs: config.deploy.healthTimeoutMs + 30_000 })

  // ---- requested: validate, reduce, quote, check margin ----
  /** Capacity promised on each target by the services of `st` (a scaled-to-zero service keeps its place). */
  function usedCapacity(st: Readonly<State>): Map<string, { vcpu: number; memoryGiB: number; storageGiB: number }> {
    const used = new Map<string, { vcpu: number; memoryGiB: number; storageGiB: number }>()
    for (const o of Object.values(st.services)) {
      if (!o.quote || !o.spec || !['provisioning', 'active', 'scaled-to-zero', 'terminating'].includes(o.state)) continue
      const u = used.get(o.quote.target) ?? { vcpu: 0, memoryGiB: 0, storageGiB: 0 }
      const n = Math.max(o.replicas, o.spec.replicas)
      u.vcpu += o.spec.vcpu * n
      u.memoryGiB += o.spec.memoryGiB * n
      u.storageGiB += o.spec.storageGiB
      used.set(o.quote.target, u)
    }
    return used
  }

  async function quote(s: ServiceRecord): Promise<void> {
    if (config.operator.draining || p.draining?.()) throw new Rejection('OPERATOR_DRAINING', ['the operator is draining and takes no new requests'])
    if (s.problems?.length) throw new Rejection('MALFORMED_REQUEST', s.problems)
    const tier = TierNames[s.tierIndex]
    if (!tier) throw new Rejection('MALFORMED_REQUEST', [`tier: got ${s.tierIndex}, expected 0 (basic), 1 (standard) or 2 (premium)`])
    // the customer may have terminated before we got here: never provision what is already over
    const onchain = await escrow.getService(BigInt(s.serviceId))
    if (!onchain) {
      await missingOnChain(s.serviceId) // throws until the chain has clearly forgotten it
      return
    }
    if (s.missing)
      await patch(s.serviceId, (r) => {
        delete r.missing // a lagging node's misses do not count towards a later absence
      })
    if (onchain.state === 'terminated' || onchain.state === 'closed') {
      await move(s.serviceId, 'terminating', 'ServiceTerminated', (r) => {
        r.reason = 'CUSTOMER_TERMINATED'
      })
      return
    }
    const bp = await escrow.getBlueprint(BigInt(s.blueprintId))
    if (!bp) throw new Rejection('UNKNOWN_BLUEPRINT', [`blueprint ${s.blueprintId} is not registered`])
    const allowTesting = config.providers.local?.allowTestSources ?? false
    const usable: BlueprintSource[] = []
    const problems: string[] = []
    for (const [i, src] of bp.sources.entries()) {
      if (!src.ok) problems.push(`sources[${i}]: ${src.error}`)
      else if (src.source.kind === 'testing' && !allowTesting) problems.push(`sources[${i}]: testing sources are not allowed by this operator`)
      else usable.push(src.source)
    }
    if (!usable.length) throw new Rejection('MALFORMED_REQUEST', problems.length ? problems : ['the blueprint has no sources'])
    const r = reduce(bp.requirements, s.preferences ?? {}, config.defaults, config.ceilings, tier, config.tiers)
    if (!r.ok) throw new Rejection(r.reason, r.problems)
    const spec = r.spec
    const price = bp.pricePerHour[s.tierIndex]
    if (price === undefined) throw new Rejection('MALFORMED_REQUEST', [`tier ${s.tierIndex} has no price in blueprint ${s.blueprintId}`])
    const priceUsd = tokenToUsd(price, config.token.decimals, config.token.usdPerToken)

    // every (target, source) that can serve the spec, cheapest first (ties by target name: deterministic)
    const candidates: Array<{ target: Target; source: BlueprintSource; total: Decimal }> = []
    const nearest: string[] = []
    for (const source of usable) {
      const able = targets.list().filter((t) => t.sourceKinds.includes(source.kind))
      if (!able.length) nearest.push(`no enabled target runs ${source.kind} sources`)
      for (const t of able) {
        const res = cheapest(spec, [t.offer], { maxCostPerHourUsd: config.ceilings.maxCostPerHourUsd })
        if (res.ok) candidates.push({ target: t, source, total: res.quote.breakdown.totalUsd })
        else for (const n of res.nearest.slice(0, 1)) nearest.push(`${t.name}: ${n.why.join('; ')}`)
      }
    }
    candidates.sort((a, b) => a.total.cmp(b.total) || a.target.name.localeCompare(b.target.name))
    if (!candidates.length) throw new Rejection('NO_FEASIBLE_OFFER', nearest.length ? nearest : ['no target can run this blueprint'])
    const cheapestTotal = candidates[0]!.total
    const needed = cheapestTotal.mul(config.margin.minPriceToCost)
    if (priceUsd.lt(needed))
      throw new Rejection('MARGIN_TOO_LOW', [`the tier pays ${priceUsd.toFixed()} USD/h; capacity costs ${cheapestTotal.toFixed()} USD/h × ${config.margin.minPriceToCost.toFixed()} = ${needed.toFixed()} USD/h`])

    // choose and reserve in one state update, so concurrent quotes never promise the same capacity twice
    const chosen = await store.update((st) => {
      const rec = st.services[s.serviceId]
      if (!rec || rec.state !== 'requested') return undefined
      const used = usedCapacity(st)
      const full: string[] = []
      for (const c of candidates) {
        const t = c.target
        const u = used.get(t.name) ?? { vcpu: 0, memoryGiB: 0, storageGiB: 0 }
        const fits =
          u.vcpu + spec.vcpu * spec.replicas <= t.offer.vcpu &&
          u.memoryGiB + spec.memoryGiB * spec.replicas <= t.offer.memoryGiB &&
          u.storageGiB + spec.storageGiB <= t.offer.includedStorageGiB
        if (!fits) {
          full.push(`${t.name}: not enough free capacity (${t.offer.vcpu - u.vcpu} vCPU, ${t.offer.memoryGiB - u.memoryGiB} GiB free)`)
          continue
        }
        if (priceUsd.lt(c.total.mul(config.margin.minPriceToCost))) {
          full.push(`${t.name}: ${c.total.toFixed()} USD/h leaves too little margin`)
          continue
        }
        rec.tier = tier
        rec.spec = spec
        rec.source = c.source
        rec.quote = {
          provider: t.offer.provider,
          target: t.name,
          region: t.offer.region,
          instanceType: t.offer.instanceType,
          ...(t.placement && { placement: t.placement }),
          hourlyUsd: t.hourlyUsd.toFixed(),
          totalHourlyUsd: c.total.toFixed(),
          replicas: spec.replicas,
          source: t.offer.source,
        }
        rec.intent = { op: 'provision', at: new Date().toISOString(), attempt: 0 }
        transition(rec, 'provisioning', 'quoted', { detail: `${t.name} at ${c.total.toFixed()} USD/h for ${spec.replicas} replica(s)` })
        return { target: t.name, total: c.total }
      }
      throw new Rejection('NO_FEASIBLE_OFFER', full)
    })
    if (chosen) {
      m.transitions.inc({ to: 'provisioning' })
      log.info({ serviceId: s.serviceId, to: 'provisioning', cause: 'quoted', detail: `${chosen.target} at ${chosen.total.toFixed()} USD/h for ${spec.replicas} replica(s)` }, 'provisioning')
    }
  }

  function requestOf(s: ServiceRecord, replicas: number): DeploymentRequest {
    const t = targetOf(s)
    return {
      deploymentId: s.deploymentId,
      serviceId: s.serviceId,
      blueprintId: s.blueprintId,
      source: s.source!,
      spec: { ...s.spec!, replicas },
      ...(t.placement && { placement: t.placement }),
    }
  }

  async function acquireSlot(signal: AbortSignal) {
    if (signal.aborted) throw new AbortedError('deploy slot', signal.reason)
    if (deploySlots > 0) {
      deploySlots--
      return
    }
    await new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        const i = slotWaiters.indexOf(take)
        if (i >= 0) slotWaiters.splice(i, 1)
        reject(new AbortedError('deploy slot', signal.reason))
      }
      const take = () => {
        signal.removeEventListener('abort', onAbort)
        resolve()
      }
      slotWaiters.push(take)
      signal.addEventListener('abort', onAbort, { once: true })
    })
  }
  function releaseSlot() {
    const next = slotWaiters.shift()
    if (next) next()
    else deploySlots++
  }

  // ---- provisioning: create (or adopt), wait healthy, activate on chain ----
  async function deploy(id: string, signal: AbortSignal): Promise<void> {
    const s0 = get(id)
    if (!s0 || s0.state !== 'provisioning') return
    const target = targetOf(s0)
    const replicas = s0.spec!.replicas
    const opts = () => ({ signal, timeoutMs: config.deploy.healthTimeoutMs + 30_000 })
    let status: DeploymentStatus
    try {
      await acquireSlot(signal)
    } catch {
      return // stopping, or the service moved on: it resumes (or is torn down) from its recorded state
    }
    try {
      status = await retry(
        async (attempt) => {
          await patch(id, (s) => {
            if (s.state === 'provisioning') s.intent = { op: 'provision', at: new Date().toISOString(), attempt }
          })
          const cur = get(id)
          if (!cur || cur.state !== 'provisioning') throw new BaseError('service left provisioning', { code: 'SUPERSEDED' })
          const st = await target.provisioner.provision(requestOf(cur, replicas), opts())
          if (!st.healthy) throw new BaseError(`deployment ${cur.deploymentId} is not healthy: ${st.detail ?? `${st.replicasReady}/${st.replicasWanted} ready`}`, { code: 'UNHEALTHY', reason: 'UNHEALTHY', retryable: true })
          return st
        },
        {
          attempts: config.deploy.attempts,
          baseMs: config.deploy.backoffMs,
          signal,
          onRetry: (err, attempt, delay) => log.warn({ serviceId: id, attempt, delayMs: Math.round(delay), err: (err as Error).message }, 'provisioning failed; retrying'),
        },
      )
    } catch (err) {
      // stopping or superseded (terminated meanwhile): nothing is decided here; the recorded state drives what follows
      if (signal.aborted || (err as BaseError).code === 'SUPERSEDED') return
      const reason = reasonOf(err, 'PROVISION_FAILED')
      log.error({ serviceId: id, reason, err }, 'provisioning failed for good; rolling back and refunding')
      // the decision is recorded first; the refund step destroys whatever was created before it refunds
      await move(id, 'refunding', reason, (s) => {
        s.reason = reason
        s.problems = [(err as BaseError).shortMessage ?? String(err)]
        delete s.intent
      }, (err as BaseError).shortMessage)
      return
    } finally {
      releaseSlot()
    }
    // healthy: charge only from now on
    await patch(id, (s) => {
      if (s.state === 'provisioning') s.intent = { op: 'activate', at: new Date().toISOString(), attempt: 1 }
    })
    if (get(id)?.state !== 'provisioning') return
    try {
      await retry(() => escrow.activate(BigInt(id), signal), { attempts: 5, baseMs: 500, signal })
    } catch (err) {
      if ((err as BaseError).code === 'SERVICE_UNKNOWN') {
        await missingOnChain(id) // throws (next tick retries) until vanished; then the terminating step tears it down
        return
      }
      if ((err as BaseError).code === 'SERVICE_ENDED') {
        // the customer terminated while we provisioned: tear down, withdraw nothing, refund nothing more
        await move(id, 'terminating', 'ServiceTerminated', (s) => {
          s.reason = 'CUSTOMER_TERMINATED'
        })
        return
      }
      throw err
    }
    await store.update((st) => {
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
    if (get(id)?.state === 'active') {
      m.transitions.inc({ to: 'active' })
      log.info({ serviceId: id, to: 'active', cause: 'healthy', detail: status.endpoints.join(' ') }, 'active')
    }
  }

  /** Stop a deploy in flight for `id` and wait until it has let go (before tearing the service down). */
  async function cancelDeploy(id: string): Promise<void> {
    const d = deploying.get(id)
    if (!d) return
    d.controller.abort(new Error('service left provisioning'))
    await d.promise
  }

  /** Destroy everything of the service on its target (already gone is success). A target no longer configured is
   * logged as a leak for the operator and does not block the customer's refund. */
  async function destroyQuietly(id: string) {
    const s = get(id)
    if (!s?.quote) return
    const t = targets.byName(s.quote.target)
    if (!t) {
      m.leaks.inc({ target: s.quote.target })
      log.error({ serviceId: id, deploymentId: s.deploymentId, target: s.quote.target }, 'target no longer configured: cannot destroy; clean it up by hand')
      return
    }
    try {
      await retry(() => t.provisioner.destroy(s.deploymentId, callOpts()), { attempts: 3, baseMs: 500, signal: common.signal, shouldRetry: (err) => isRetryable(err) })
    } catch (err) {
      log.error({ serviceId: id, err }, 'destroy failed; the next tick and the orphan sweep will retry')
      throw err
    }
  }

  /**
   * The chain did not return the service (reads, or a write refused as SERVICE_UNKNOWN). One missing read more; once
   * it has been missing for `loop.vanishedAfterMs` and three reads in a row, the chain has forgotten it (a reorg deeper
   * than the confirmations, a reset test chain): the service is marked SERVICE_VANISHED and moved on towards its end
   * (true). Until then a lagging RPC node is the likelier story: a retryable SERVICE_MISSING is thrown.
   */
  async function missingOnChain(id: string): Promise<true> {
    const now = new Date()
    await patch(id, (r) => {
      r.missing = { since: r.missing?.since ?? now.toISOString(), checks: (r.missing?.checks ?? 0) + 1 }
    })
    const s = get(id)!
    const miss = s.missing!
    if (miss.checks < VANISHED_CHECKS || now.getTime() - Date.parse(miss.since) < config.loop.vanishedAfterMs)
      throw new BaseError(`service ${id} is not on chain`, {
        code: 'SERVICE_MISSING',
        retryable: true,
        details: [`missing since ${miss.since} (${miss.checks} read(s)); given up after ${Math.round(config.loop.vanishedAfterMs / 1000)} s`],
      })
    log.error({ serviceId: id, since: miss.since, checks: miss.checks, state: s.state }, 'the chain no longer knows this service (a reorg deeper than the confirmations, or a reset chain): destroying its deployment; there is no escrow to refund from')
    if (s.state === 'refunding' || s.state === 'terminating')
      await patch(id, (r) => {
        r.reason = 'SERVICE_VANISHED'
      })
    else
      await move(id, 'terminating', 'SERVICE_VANISHED', (r) => {
        r.reason = 'SERVICE_VANISHED'
      }, `missing since ${miss.since}`)
    return true
  }

  /** Run a chain write; a SERVICE_UNKNOWN answer goes through `missingOnChain` (true: the service has vanished). */
  async function onChain<T>(id: string, fn: () => Promise<T>): Promise<T | 'vanished'> {
    try {
      return await fn()
    } catch (err) {
      if ((err as BaseError).code !== 'SERVICE_UNKNOWN') throw err
      await missingOnChain(id)
      return 'vanished'
    }
  }

  /** End a vanished service here: nothing may keep running, and nothing is left on chain to pay or refund. */
  async function closeVanished(id: string) {
    await cancelDeploy(id)
    await patch(id, (r) => {
      accrueCost(r)
      r.replicas = 0
      r.endpoints = []
      r.intent = { op: 'destroy', at: new Date().toISOString(), attempt: (r.intent?.attempt ?? 0) + 1, detail: 'vanished' }
    })
    await destroyQuietly(id)
    const to = get(id)!.state === 'refunding' ? 'refunded' : 'closed'
    await move(id, to, 'SERVICE_VANISHED', (r) => {
      delete r.intent
    }, 'gone from the chain: nothing to withdraw or refund')
  }

  // ---- refunding: make sure nothing runs, then refund the whole unserved balance ----
  async function refund(id: string) {
    if (get(id)!.reason === 'SERVICE_VANISHED') return closeVanished(id)
    await cancelDeploy(id)
    await patch(id, (r) => {
      accrueCost(r)
      r.replicas = 0
      r.endpoints = []
      r.intent = { op: 'destroy', at: new Date().toISOString(), attempt: (r.intent?.attempt ?? 0) + 1, detail: 'rollback' }
    })
    await destroyQuietly(id)
    const reason = get(id)!.reason ?? 'PROVISION_FAILED'
    await patch(id, (r) => {
      r.intent = { op: 'refund', at: new Date().toISOString(), attempt: (r.intent?.attempt ?? 0) + 1, detail: reason }
    })
    const res = await onChain(id, () => escrow.refund(BigInt(id), reason))
    if (res === 'vanished') return closeVanished(id)
    m.refunds.inc({ reason })
    await move(id, 'refunded', reason, (r) => {
      delete r.intent
    }, res === 'already' ? 'already refunded on chain' : undefined)
  }

  // ---- terminating: destroy, withdraw what was earned, refund the rest ----
  async function terminate(id: string) {
    if (get(id)!.reason === 'SERVICE_VANISHED') return closeVanished(id)
    await cancelDeploy(id)
    await patch(id, (r) => {
      r.intent = { op: 'destroy', at: new Date().toISOString(), attempt: (r.intent?.attempt ?? 0) + 1 }
    })
    await destroyQuietly(id)
    await patch(id, (r) => {
      accrueCost(r)
      r.replicas = 0
      r.endpoints = []
      r.intent = { op: 'withdraw', at: new Date().toISOString(), attempt: 1 }
    })
    if ((await onChain(id, () => escrow.withdraw(BigInt(id)))) === 'vanished') return closeVanished(id)
    const reason: ReasonCode = get(id)!.reason ?? 'TTL_REACHED'
    await patch(id, (r) => {
      r.intent = { op: 'refund', at: new Date().toISOString(), attempt: 1, detail: reason }
    })
    if ((await onChain(id, () => escrow.refund(BigInt(id), reason))) === 'vanished') return closeVanished(id)
    m.refunds.inc({ reason })
    await move(id, 'closed', reason, (r) => {
      delete r.intent
    })
  }

  // ---- active / scaled-to-zero: payment state -> replicas; TTL; health ----
  async function reconcile(id: string) {
    const s = get(id)!
    const onchain = await escrow.getService(BigInt(id))
    if (!onchain) {
      await missingOnChain(id)
      return terminate(id)
    }
    const now = await p.now()
    const paidUntil = onchain.ratePerHour > 0n ? paidUntilOf(onchain.balance, onchain.ratePerHour, onchain.settledAt) : 0n
    const facts = {
      paidUntil: paidUntil.toString(),
      endsAt: onchain.endsAt.toString(),
      ratePerHour: onchain.ratePerHour.toString(),
      balance: onchain.balance.toString(),
      onchainState: onchain.state,
    }
    // the state file is rewritten on every change: write the chain's facts only when they moved
    if (s.missing || Object.entries(facts).some(([k, v]) => s.chain?.[k as keyof typeof facts] !== v)) {
      await patch(id, (r) => {
        accrueCost(r)
        r.chain = { ...r.chain, ...facts }
        delete r.missing
      })
    }
    if (onchain.state === 'terminated' || onchain.state === 'closed') {
      await move(id, 'terminating', 'ServiceTerminated', (r) => {
        r.reason ??= 'CUSTOMER_TERMINATED'
      })
      return terminate(id)
    }
    if (onchain.endsAt > 0n && now >= onchain.endsAt) {
      await move(id, 'terminating', 'TTL_REACHED', (r) => {
        r.reason = 'TTL_REACHED'
      })
      return terminate(id)
    }
    const target = targetOf(s)
    const tier = TierNames[onchain.tier] ?? s.tier ?? 'basic'
    if (paidUntil <= now) {
      if (s.state === 'active' || s.replicas > 0) {
        await patch(id, (r) => {
          r.intent = { op: 'scale', at: new Date().toISOString(), attempt: 1, detail: '0' }
        })
        await target.provisioner.scale(s.deploymentId, 0, callOpts())
        await move(id, 'scaled-to-zero', 'payment expired', (r) => {
          accrueCost(r)
          r.replicas = 0
          r.endpoints = []
          delete r.intent
        }, `paid until ${iso(paidUntil)}, now ${iso(now)}`)
      }
      return
    }
    let want = replicasFor(config, tier, s.spec)
    if (s.spec && want > Math.max(s.replicas, s.spec.replicas)) {
      // a bigger tier never over-commits its target: as many replicas as the free capacity holds (at least one)
      const used = usedCapacity(store.read()).get(target.name) ?? { vcpu: 0, memoryGiB: 0, storageGiB: 0 }
      const own = Math.max(s.replicas, s.spec.replicas)
      const freeV = target.offer.vcpu - used.vcpu + s.spec.vcpu * own
      const freeM = target.offer.memoryGiB - used.memoryGiB + s.spec.memoryGiB * own
      const fit = Math.max(1, Math.floor(Math.min(s.spec.vcpu > 0 ? freeV / s.spec.vcpu : want, s.spec.memoryGiB > 0 ? freeM / s.spec.memoryGiB : want)))
      if (fit < want) {
        log.warn({ serviceId: id, tier, want, fit, target: target.name }, 'the tier asks for more replicas than the target has room for; running what fits')
        want = fit
      }
    }
    if (s.quote && want > 1) {
      // the customer's tier sets the rate; more replicas than the rate pays for at the operator's margin would run at a loss
      const perReplica = usd(s.quote.totalHourlyUsd).div(Math.max(1, s.quote.replicas))
      const payUsd = tokenToUsd(onchain.ratePerHour, config.token.decimals, config.token.usdPerToken)
      const paysFor = perReplica.gt(0) ? payUsd.div(perReplica.mul(config.margin.minPriceToCost)).floor().toNumber() : want
      if (paysFor < want) {
        log.warn({ serviceId: id, tier, want, paysFor, rateUsd: payUsd.toFixed() }, 'the tier pays for fewer replicas than it asks at the operator margin; running what it pays for')
        want = Math.max(1, paysFor)
      }
    }
    if (s.state === 'scaled-to-zero' || s.replicas !== want || s.tier !== tier) {
      await patch(id, (r) => {
        r.intent = { op: 'scale', at: new Date().toISOString(), attempt: 1, detail: String(want) }
      })
      const spec: ResourceSpec = { ...s.spec!, tier, replicas: want, minReplicas: want, maxReplicas: Math.min(Math.max(want, config.tiers[tier].maxReplicas), config.ceilings.replicas) }
      // a new tier changes more than the count (autoscaling bounds): provision the new spec (idempotent, adopts);
      // the same tier coming back from zero only needs its replicas
      const st =
        s.tier !== tier
          ? await target.provisioner.provision({ ...requestOf(s, want), spec }, callOpts())
          : await target.provisioner.scale(s.deploymentId, want, callOpts())
      await move(id, 'active', s.state === 'scaled-to-zero' ? 'top-up' : s.tier !== tier ? 'tier changed' : 'replicas', (r) => {
        accrueCost(r)
        r.replicas = want
        r.tier = tier
        r.spec = spec
        r.endpoints = st.endpoints
        r.health.failures = 0
        delete r.intent
      }, `${want} replica(s), paid until ${iso(paidUntil)}`)
      return
    }
    // healthy?
    const st = await target.provisioner.status(s.deploymentId, callOpts())
    const healthy = st.exists && st.healthy && st.replicasReady >= want
    await patch(id, (r) => {
      accrueCost(r)
      r.health.lastCheck = new Date().toISOString()
      r.health.healthy = healthy
      r.health.failures = healthy ? 0 : r.health.failures + 1
      r.endpoints = st.endpoints
    })
    const failures = get(id)!.health.failures
    if (healthy && s.health.restarts > 0 && s.health.lastRestartAt && Date.now() - Date.parse(s.health.lastRestartAt) > 10 * 60_000) {
      await patch(id, (r) => {
        r.health.restarts = 0 // healthy for ten minutes since the last restart: a fresh start
      })
    }
    if (!healthy && failures >= config.deploy.unhealthyTicksBeforeRestart) {
      const restarts = get(id)!.health.restarts
      if (restarts >= MAX_RESTARTS) {
        // restarts and replacements did not help: stop charging for a service that does not run
        m.gaveUp.inc()
        log.error({ serviceId: id, restarts, detail: st.detail }, 'still unhealthy after restarts and replacements; ending the service')
        await move(id, 'terminating', 'UNHEALTHY', (r) => {
          r.reason = 'UNHEALTHY'
        }, st.detail)
        return terminate(id)
      }
      log.warn({ serviceId: id, failures, restarts, detail: st.detail }, 'unhealthy; restarting')
      // replace when restarts do not help: provision again (idempotent, adopts what still runs)
      const after =
        !st.exists || restarts >= 3
          ? await target.provisioner.provision(requestOf(get(id)!, want), callOpts())
          : await target.provisioner.restart(s.deploymentId, callOpts())
      await patch(id, (r) => {
        r.health.restarts++
        r.health.lastRestartAt = new Date().toISOString()
        r.health.failures = 0
        r.health.healthy = after.healthy
        r.endpoints = after.endpoints
      })
    }
  }

  /** Advance one service by one step of its state machine. */
  async function step(id: string): Promise<void> {
    const s = get(id)
    if (!s || TERMINAL.includes(s.state)) return
    switch (s.state) {
      case 'requested':
        try {
          await quote(s)
        } catch (err) {
          if (err instanceof Rejection) {
            log.warn({ serviceId: id, eventId: s.history[0]?.eventId, reason: err.reason, problems: err.details }, 'request rejected; refunding')
            await move(id, 'refunding', err.reason!, (r) => {
              r.reason = err.reason!
              r.problems = err.details
            }, err.details.join('; '))
            return refund(id)
          }
          // anything else (RPC down or refusing, a race with intake) is not the customer's fault: try again next tick
          log.warn({ serviceId: id, err: (err as Error).message.split('\n')[0] }, 'request not quoted yet; will retry')
          return
        }
        if (get(id)?.state === 'provisioning') kickDeploy(id)
        return
      case 'provisioning':
        return kickDeploy(id)
      case 'refunding':
        return refund(id)
      case 'terminating':
        return terminate(id)
      case 'active':
      case 'scaled-to-zero':
        return reconcile(id)
    }
  }

  function kickDeploy(id: string): void {
    if (deploying.has(id) || stopped) return
    const controller = new AbortController()
    const signal = AbortSignal.any([common.signal, controller.signal])
    const promise = deploy(id, signal)
      .catch((err) => {
        if (signal.aborted) log.debug({ serviceId: id }, 'deploy interrupted; the recorded state decides what follows')
        else log.error({ err, serviceId: id }, 'deploy failed; will retry on the next tick')
      })
      .finally(() => {
        deploying.delete(id)
        // after a rollback, refund at once rather than at the next tick
        const s = get(id)
        if (s && s.state === 'refunding' && !stopped) void serial(id, () => step(id))
      })
    deploying.set(id, { controller, promise })
  }

  /** Start one reconcile pass: every live service gets a step, at most one at a time per service. A slow service
   * (an unreachable host) holds only itself: the loop never waits for it. Resolves when this pass's steps settle. */
  function tick(): Promise<void> {
    const t0 = performance.now()
    m.ticks.inc()
    const services = Object.values(store.read().services)
    const counts: Record<string, number> = {}
    for (const s of services) counts[s.state] = (counts[s.state] ?? 0) + 1
    for (const st of ['requested', 'provisioning', 'active', 'scaled-to-zero', 'terminating', 'closed', 'refunding', 'refunded']) m.services.set(counts[st] ?? 0, { state: st })
    const work = services.filter((s) => !TERMINAL.includes(s.state) && !inFlight.has(s.serviceId)).map((s) => serial(s.serviceId, () => step(s.serviceId)))
    m.tickSeconds.observe((performance.now() - t0) / 1000)
    return Promise.all(work).then(() => p.onTick?.((performance.now() - t0) / 1000))
  }

  return {
    kick(id) {
      if (!stopped) void serial(id, () => step(id))
    },
    tick,
    start() {
      const loop = () => {
        if (stopped) return
        try {
          void tick()
        } catch (err) {
          log.error({ err }, 'reconcile pass failed')
        }
        timer = setTimeout(loop, config.loop.intervalMs)
      }
      loop()
    },
    async stop() {
      stopped = true
      clearTimeout(timer)
      for (const d of deploying.values()) d.controller.abort(new Error('stopping'))
      await Promise.allSettled([...inFlight.values(), ...[...deploying.values()].map((d) => d.promise)])
    },
    async idle() {
      while (inFlight.size || deploying.size) {
        await Promise.allSettled([...inFlight.values(), ...[...deploying.values()].map((d) => d.promise)])
        await sleep(20)
      }
    },
  }
}
