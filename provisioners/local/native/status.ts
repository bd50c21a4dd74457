/** A deployment's status: its replicas probed on their health path, or the leaked processes of one without manifest. */
import type { CallOptions, DeploymentStatus } from '../../types.js'
import { probeHttp } from '../../health.js'
import { readManifest } from '../manifest.js'
import { call, depDir, endpointOf, type LocalContext } from './context.js'
import { discover } from './discover.js'
import { validateId } from './validate.js'

/** `Provisioner.status`: a short call, no lock (it only reads). */
export function status(ctx: LocalContext, id: string, o?: CallOptions): Promise<DeploymentStatus> {
  return call(ctx, `local status ${id}`, ctx.shortCallMs, o, async (signal) => {
    validateId(id)
    return statusOf(ctx, id, signal)
  })
}

/** The status of deployment `id` now (also what provision, scale and restart return). */
export async function statusOf(ctx: LocalContext, id: string, signal: AbortSignal): Promise<DeploymentStatus> {
  const found = await readManifest(depDir(ctx, id))
  const m = found?.operatorId === ctx.operatorId ? found : undefined
  const { byIndex, strays } = await discover(ctx, id, m, signal)
  if (!m) {
    const seen = new Set([...byIndex.values(), ...strays].map((l) => l.pid))
    // processes that dropped the markers still sit in the deployment's cgroups
    for (const g of await (await ctx.cgroups()).populated()) if (g.deploymentId === id) for (const pid of g.pids) seen.add(pid)
    const leaked = [...seen]
    return {
      deploymentId: id,
      exists: leaked.length > 0,
      replicasWanted: 0,
      replicasReady: 0,
      endpoints: [],
      healthy: leaked.length === 0,
      placement: ctx.placement,
      ...(leaked.length ? { detail: `${leaked.length} process(es) without a manifest: pids ${leaked.join(', ')}` } : {}),
    }
  }
  const healthPath = m.request.healthPath ?? '/'
  const endpoints: string[] = []
  const problems: string[] = []
  for (let i = 0; i < m.replicas; i++) {
    const live = byIndex.get(i)
    const port = live?.port ?? m.replicaRecords.find((r) => r.index === i)?.port
    if (!live || !port) {
      problems.push(`replica ${i} not running`)
      continue
    }
    const probe = await probeHttp({ url: `${endpointOf(ctx, port)}${healthPath}`, timeoutMs: 3_000, signal })
    if (probe.ok) endpoints.push(endpointOf(ctx, port))
    else problems.push(`replica ${i} unhealthy: ${probe.error ?? `HTTP ${probe.status}`}`)
  }
  const extra = [...byIndex.keys()].filter((i) => i >= m.replicas).length + strays.length
  if (extra) problems.push(`${extra} process(es) beyond the wanted replicas`)
  return {
    deploymentId: id,
    exists: true,
    replicasWanted: m.replicas,
    replicasReady: endpoints.length,
    endpoints,
    healthy: endpoints.length === m.replicas,
    placement: ctx.placement,
    ...(problems.length ? { detail: problems.join('; ') } : {}),
  }
}
