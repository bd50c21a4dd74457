/**
 * Bring a deployment's replicas on its host to `n`: start replicas 0..n-1 that do not run (artifact installed or
 * image pulled first, each under the supervisor the host offers, with its port, env, limits and workload user), stop
 * the rest keeping their data.
 */
import { inUidRange } from '../../core/workloadUids.js'
import { runArgs } from '../container/rules.js'
import { ProvisionError } from '../errors.js'
import { installArtifact } from './artifact.js'
import { pullImage } from './containers.js'
import { GiB, HOST_ENV_VALUE, nameOf, type SshContext } from './context.js'
import { HostUnsupportedError } from './errors.js'
import type { HostFacts } from './hostAgent.js'
import { writeManifest } from './manifest.js'
import { allocatePorts, ensureUid } from './reserve.js'
import { quoteWord } from './shellQuote.js'
import type { Placement, ReplicaMode, SshHost } from './types.js'
import { ENV_KEY_RE } from './validate.js'

/** How `h` supervises replicas of `kind`: its container runtime, systemd, or the pidfile supervisor (`supervisor`). */
export function modeFor(ctx: SshContext, h: SshHost, kind: Placement['kind'], f: HostFacts): ReplicaMode {
  if (kind === 'container') {
    if (f.runtime === 'none') throw new HostUnsupportedError(h.name, 'no container runtime (podman or docker)')
    if (!f.runtimeLimits) throw new HostUnsupportedError(h.name, `${f.runtime} is rootless on cgroup v1 and would ignore the containers' CPU and memory limits`)
    return f.runtime
  }
  if (!f.sha256sum) throw new HostUnsupportedError(h.name, 'sha256sum is missing, artifacts cannot be verified on the host')
  const want = ctx.supervisor
  if (want !== 'setsid' && f.systemd !== 'no') return f.systemd === 'system' ? 'systemd-system' : 'systemd-user'
  if (want === 'systemd') throw new HostUnsupportedError(h.name, 'systemd is not running')
  if (!f.setsid) throw new HostUnsupportedError(h.name, 'setsid is missing')
  return 'setsid'
}

/** Extra `start` arguments of a native replica: the workload user or uid, checked against what the host can do. */
export function nativeUserArgs(h: SshHost, f: HostFacts, pl: Placement): string[] {
  if (h.workloadUids) {
    if (f.uid !== 0) throw new HostUnsupportedError(h.name, 'workload uids need the SSH login to be root')
    if (!f.setpriv) throw new HostUnsupportedError(h.name, 'workload uids need setpriv (util-linux)')
    if (!inUidRange(pl.uid, [h.workloadUids.from, h.workloadUids.to])) throw new ProvisionError(`deployment ${pl.deploymentId} has no workload uid on ${h.name}`, { code: 'NO_FREE_UID', retryable: true, meta: { host: h.name } })
    return [String(pl.uid)]
  }
  if (!h.workloadUser) return []
  if (f.uid !== 0) throw new HostUnsupportedError(h.name, `workload user ${h.workloadUser} needs the SSH login to be root`)
  if (!f.setpriv) throw new HostUnsupportedError(h.name, `workload user ${h.workloadUser} needs setpriv (util-linux)`)
  return [h.workloadUser]
}

/** The env file of replica `i` (shell `export` lines): the request's env, then what the operator sets. */
export function envFile(ctx: SshContext, pl: Placement, i: number, port: number, dataDir: string): string {
  const req = pl.request
  const env: [string, string][] = [
    ...Object.entries(req.env ?? {}),
    ['PORT', String(port)],
    ['HOST', HOST_ENV_VALUE],
    ['SERVICE_ID', req.serviceId],
    ['BLUEPRINT_ID', req.blueprintId],
    ['DEPLOYMENT_ID', req.deploymentId],
    ['REPLICA_INDEX', String(i + ctx.replicaIndexBase)],
    ['DATA_DIR', dataDir],
    ['BPO_OWNER', ctx.operatorId],
    ['BPO_DEPLOYMENT', req.deploymentId],
  ]
  for (const [k] of env) if (!ENV_KEY_RE.test(k)) throw new TypeError(`env key ${JSON.stringify(k)}`)
  return env.map(([k, v]) => `export ${k}=${quoteWord(v)}\n`).join('')
}

/** Container `run` arguments after `--name`: labels, limits, port, data dir, env, image by digest (container/rules.ts). */
export function containerArgs(ctx: SshContext, h: SshHost, pl: Placement, i: number, hostPort: number): string[] {
  const L = ctx.agent.layout(h)
  return runArgs({ req: pl.request, operatorId: ctx.operatorId, tag: L.tag, replica: i, replicaIndex: i + ctx.replicaIndexBase, hostPort, data: `${L.dep(pl.request.deploymentId)}/data/${i}` })
}

/** Start replicas 0..n-1 that do not run (a running one is left alone) and stop the rest, keeping their data. */
export async function converge(ctx: SshContext, h: SshHost, id: string, n: number, signal: AbortSignal): Promise<void> {
  const { agent, ledger } = ctx
  const remote = await agent.status(h, id, { signal })
  const existing = remote.present ? remote.replicas : []
  const running = new Set(existing.filter((r) => r.state === 'running' || r.state === 'restarting').map((r) => r.index))
  const toStart = Array.from({ length: n }, (_, i) => i).filter((i) => !running.has(i))
  const recorded = ledger.get(id)!.ports
  if (toStart.some((i) => recorded[String(i)] !== undefined)) {
    // a stopped replica's port may have been taken by someone else meanwhile: give it a new one
    const listening = await agent.listeningPorts(h, { signal })
    const stale = toStart.filter((i) => listening.has(recorded[String(i)] ?? -1))
    if (stale.length) await ledger.update((d) => stale.forEach((i) => delete d.placements[id]!.ports[String(i)]))
  }
  await allocatePorts(ctx, h, id, n, signal)
  const before = ledger.get(id)!.uid
  const pl = await ensureUid(ctx, h, id)
  // the uid is on the host (manifest) before any replica runs as it
  if (pl.uid !== before) await writeManifest(ctx, h, pl, signal)
  const f = await agent.facts(h, { signal })
  const mode = modeFor(ctx, h, pl.kind, f)
  const L = agent.layout(h)
  const depDir = L.dep(id)
  let bin = '-'
  if (pl.kind === 'native' && toStart.length) bin = await installArtifact(ctx, h, pl.request, f, signal)
  else if (pl.kind === 'container' && toStart.length && pl.request.source.kind === 'container') {
    await pullImage(ctx, h, mode, pl.request.source, signal)
  }
  await Promise.all(
    toStart.map(async (i) => {
      const port = pl.ports[String(i)]!
      const name = nameOf(ctx, h, id, i)
      const dataDir = `${depDir}/data/${i}`
      const mem = pl.unit.memoryGiB > 0 ? Math.floor(pl.unit.memoryGiB * GiB) : 0
      const cpu = pl.unit.vcpu > 0 ? Math.max(1000, Math.round(pl.unit.vcpu * 100_000)) : 0
      const extra = pl.kind === 'container' ? containerArgs(ctx, h, pl, i, port) : nativeUserArgs(h, f, pl)
      await agent.must(h, `starting replica ${i}`, ['start', depDir, String(i), mode, name, bin, name, String(mem), String(cpu), String(port), ...extra], {
        signal,
        stdin: envFile(ctx, pl, i, port, dataDir),
      })
    }),
  )
  await Promise.all(
    existing
      .filter((r) => r.index >= n && r.state !== 'stopped')
      .map((r) => agent.must(h, `stopping replica ${r.index}`, ['stop', depDir, String(r.index), ctx.grace, nameOf(ctx, h, id, r.index)], { signal })),
  )
}
