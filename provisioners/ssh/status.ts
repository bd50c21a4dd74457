/**
 * How a deployment is doing: which of its wanted replicas run and answer their health path (probed from the daemon),
 * their endpoints, and the hosts' CPU counters for autoscaling.
 */
import { probeHttp, waitForHealthy } from '../health.js'
import type { CallOptions, DeploymentStatus } from '../types.js'
import { absent, call, endpointOf, type SshContext } from './context.js'
import type { RemoteStatus } from './hostAgent.js'
import { locate } from './locate.js'
import type { Placement, SshHost } from './types.js'
import { readHostUsage } from './usage.js'
import { assertDeploymentId } from './validate.js'

/** Provisioner.status: the ledger's or a host's placement, probed now; `exists: false` when no host has it. */
export function status(ctx: SshContext, deploymentId: string, o?: CallOptions): Promise<DeploymentStatus> {
  return call(ctx, 'status', o, ctx.otherMs, async (signal) => {
    assertDeploymentId(deploymentId)
    const found = await locate(ctx, deploymentId, signal)
    if (!found) return absent(deploymentId)
    return statusFrom(ctx, found.host, found.placement, found.remote, signal)
  })
}

/** The status of `pl` from what its host reported (`remote`) and a health probe of each running replica. */
export async function statusFrom(ctx: SshContext, h: SshHost, pl: Placement, remote: RemoteStatus, signal: AbortSignal): Promise<DeploymentStatus> {
  if (!remote.present) return absent(pl.deploymentId, `manifest missing on ${h.name}`)
  const path = pl.request.healthPath ?? '/'
  const wanted = pl.replicas
  const live = remote.replicas.filter((r) => r.index < wanted && (r.state === 'running' || r.state === 'restarting') && r.port > 0)
  const probes = await Promise.all(live.map(async (r) => ({ r, ok: (await probeHttp({ url: `${endpointOf(h, r.port)}${path}`, timeoutMs: ctx.probeTimeoutMs, signal })).ok })))
  const ready = probes.filter((x) => x.ok).map((x) => x.r)
  const notes = remote.replicas.filter((r) => r.index < wanted && !ready.includes(r)).map((r) => `replica ${r.index}: ${r.state}`)
  // CPU counters for autoscaling (usage.ts); a host that cannot give them still reports its status
  const usage = live.length ? await readHostUsage(ctx.agent, h, ctx.agent.layout(h).dep(pl.deploymentId), wanted, { signal }).catch(() => undefined) : undefined
  return {
    ...(usage && { usage }),
    deploymentId: pl.deploymentId,
    exists: true,
    replicasWanted: wanted,
    replicasReady: ready.length,
    endpoints: ready.map((r) => endpointOf(h, r.port)),
    healthy: ready.length === wanted,
    placement: h.name,
    ...(notes.length ? { detail: notes.join('; ') } : {}),
  }
}

/** Wait until every wanted replica of `pl` answers its health path (`healthTimeoutMs`). */
export async function waitReady(ctx: SshContext, h: SshHost, pl: Placement, signal: AbortSignal): Promise<void> {
  const path = pl.request.healthPath ?? '/'
  await Promise.all(
    Array.from({ length: pl.replicas }, (_, i) => pl.ports[String(i)]).map((port) =>
      port === undefined ? undefined : waitForHealthy({ url: `${endpointOf(h, port)}${path}`, deadlineMs: ctx.healthTimeoutMs, timeoutMs: ctx.probeTimeoutMs, signal }),
    ),
  )
}
