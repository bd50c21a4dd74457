/**
 * What a deployment holds on its host, recorded in the ledger before anything exists there (intent first): the host
 * and its capacity, a port per replica, a workload uid. Every decision is taken again under the ledger's lock, so
 * concurrent deployments never count on the same capacity, port or uid.
 */
import { AbortedError } from '../../core/errors.js'
import { chooseWorkloadUid, inUidRange } from '../../core/workloadUids.js'
import { ProvisionError, TargetUnreachableError } from '../errors.js'
import type { DeploymentRequest } from '../types.js'
import { DEFAULT_PORTS, hostOf, times, uidRangeOf, unitOf, type SshContext } from './context.js'
import { reserved, usedByHost } from './ledger.js'
import { chooseHosts, fits } from './placement.js'
import type { Placement, Resources, SshHost } from './types.js'

/**
 * Choose a host for a new deployment and reserve its replicas in one ledger update, so two concurrent placements
 * never both count on the same free capacity. Throws NO_FEASIBLE_OFFER when no host fits.
 */
export async function placeAndReserve(ctx: SshContext, req: DeploymentRequest, kind: Placement['kind'], signal: AbortSignal): Promise<Placement> {
  const { ledger } = ctx
  const unit = unitOf(req)
  const n = req.spec.replicas
  const need = times(unit, Math.max(1, n))
  const problems: string[] = []
  if (req.spec.gpu.count > 0) problems.push(`gpu: ${req.spec.gpu.count} requested; SSH hosts offer no GPUs`)
  const chooseNow = (candidates: SshHost[], used: Map<string, Resources>) => chooseHosts({ hosts: candidates, used, need, regions: req.spec.regions, pinned: req.placement })
  const eligible: SshHost[] = []
  let unreachable: unknown
  const first = problems.length ? undefined : chooseNow([...ctx.hosts.values()], usedByHost(ledger.all()))
  if (first && !first.ok) problems.push(...first.problems)
  for (const h of first?.ok ? first.hosts : []) {
    if (kind === 'native') {
      eligible.push(h)
      continue
    }
    try {
      const f = await ctx.agent.facts(h, { signal })
      if (f.runtime === 'none') problems.push(`${h.name}: no container runtime`)
      else if (!f.runtimeLimits) problems.push(`${h.name}: ${f.runtime} is rootless on cgroup v1 (container limits would be ignored)`)
      else eligible.push(h)
    } catch (err) {
      if (!(err instanceof TargetUnreachableError)) throw err
      unreachable = err
      problems.push(`${h.name}: unreachable`)
    }
  }
  if (!eligible.length && unreachable) throw unreachable
  if (signal.aborted) throw new AbortedError('ssh provision', signal.reason)
  const noOffer = (details: string[]) => new ProvisionError(`no SSH host can hold ${req.deploymentId}`, { reason: 'NO_FEASIBLE_OFFER', code: 'NO_FEASIBLE_OFFER', retryable: false, details })
  if (!eligible.length) throw noOffer(problems)
  // intent first: the reservation is on disk before anything exists on the host
  return ledger.update((d) => {
    // capacity may have gone to a concurrent placement since the first look: decide again under the lock
    const chosen = chooseNow(eligible, usedByHost(Object.values(d.placements)))
    if (!chosen.ok) throw noOffer(chosen.problems)
    const h = chosen.hosts[0]!
    const pl: Placement = { deploymentId: req.deploymentId, host: h.name, kind, request: req, unit, replicas: n, dataReplicas: n, ports: {}, createdAt: new Date().toISOString() }
    d.placements[req.deploymentId] = pl
    return pl
  })
}

/** Reserve `n` replicas of `pl` on its host, or throw NO_FEASIBLE_OFFER. */
export async function reserve(ctx: SshContext, id: string, n: number): Promise<Placement> {
  return ctx.ledger.update((d) => {
    const pl = d.placements[id]!
    const h = hostOf(ctx, pl)
    const used = usedByHost(Object.values(d.placements), id).get(h.name)
    const want = { ...pl, replicas: n, dataReplicas: Math.max(pl.dataReplicas, n) }
    if (n > pl.replicas && !fits(h, used, reserved(want))) {
      throw new ProvisionError(`${h.name} cannot hold ${n} replicas of ${id}`, { reason: 'NO_FEASIBLE_OFFER', code: 'NO_FEASIBLE_OFFER', retryable: false, meta: { host: h.name } })
    }
    d.placements[id] = want
    return want
  })
}

/** Host ports for replicas 0..n-1 that have none yet, recorded in the ledger before anything listens. */
export async function allocatePorts(ctx: SshContext, h: SshHost, id: string, n: number, signal: AbortSignal): Promise<Placement> {
  const cur = ctx.ledger.get(id)!
  const missing = Array.from({ length: n }, (_, i) => i).filter((i) => cur.ports[String(i)] === undefined)
  if (!missing.length) return cur
  const listening = await ctx.agent.listeningPorts(h, { signal })
  return ctx.ledger.update((draft) => {
    const pl = draft.placements[id]!
    const taken = new Set<number>(listening)
    for (const other of Object.values(draft.placements)) if (other.host === h.name) for (const port of Object.values(other.ports)) taken.add(port)
    const range = h.ports ?? DEFAULT_PORTS
    let next = range.from
    for (const i of missing) {
      while (next <= range.to && taken.has(next)) next++
      if (next > range.to) throw new ProvisionError(`no free port left on ${h.name} in ${range.from}..${range.to}`, { reason: 'NO_FEASIBLE_OFFER', code: 'NO_FEASIBLE_OFFER', retryable: false })
      pl.ports[String(i)] = next
      taken.add(next)
    }
    return pl
  })
}

/**
 * Give a native placement on a host with `workloadUids` its own uid, once: a recorded uid inside the range that no
 * other placement on the host holds is kept for good (restarts, a daemon that lost its ledger and adopted it).
 */
export async function ensureUid(ctx: SshContext, h: SshHost, id: string): Promise<Placement> {
  const range = uidRangeOf(h)
  const cur = ctx.ledger.get(id)!
  if (!range || cur.kind !== 'native') return cur
  return ctx.ledger.update((d) => {
    const pl = d.placements[id]!
    const taken = new Set<number>()
    for (const other of Object.values(d.placements)) if (other.host === h.name && other.deploymentId !== id && typeof other.uid === 'number') taken.add(other.uid)
    if (inUidRange(pl.uid, range) && !taken.has(pl.uid)) return pl
    const uid = chooseWorkloadUid(`${ctx.operatorId}\0${id}`, range, taken)
    if (uid === undefined) throw new ProvisionError(`every workload uid of ${h.name} (${range.join('..')}) is held by another deployment`, { code: 'NO_FREE_UID', reason: 'NO_FEASIBLE_OFFER', retryable: true, meta: { host: h.name } })
    if (pl.uid !== undefined) ctx.log.warn({ deploymentId: id, host: h.name, was: pl.uid, uid }, 'recorded workload uid is outside the range or taken; assigning a new one')
    pl.uid = uid
    return pl
  })
}
