/** A deployment's status from the target's state and what the grid holds now. */
import type { DeploymentStatus } from '../types.js'
import { sig, type ThreefoldContext } from './context.js'

/** The twin's contract ids live on the grid now. */
export async function liveContracts(ctx: ThreefoldContext, signal: AbortSignal | undefined): Promise<Set<string>> {
  return new Set((await ctx.p.supervisor.call('listContracts', {}, sig(signal))).contracts.map((c) => c.contractId))
}

/**
 * Status from the state, with `live` (the twin's contract ids now on the grid) deciding which replicas exist and
 * `answering` (the replicas whose VM answers, probeVm.ts) which are ready. Replicas whose contracts are gone
 * (cancelled by the grid, out of funds, or by another daemon) are forgotten.
 */
export function statusOf(ctx: ThreefoldContext, id: string, live?: ReadonlySet<string>, answering?: ReadonlySet<string>): DeploymentStatus {
  const { state } = ctx
  const e = state[id]
  if (e && live) {
    const kept = e.replicas.filter((r) => r.contracts.every((c) => live.has(c)))
    if (kept.length !== e.replicas.length) {
      e.replicas = kept
      if (!kept.length && e.wanted > 0) delete state[id]
      ctx.save()
    }
  }
  if (!e || !state[id]) return { deploymentId: id, exists: false, replicasWanted: 0, replicasReady: 0, endpoints: [], healthy: true }
  const port = e.request.spec.ports[0]
  const ready = e.replicas.filter((r) => r.contracts.length > 0 && (!live || r.contracts.every((c) => live.has(c))) && (!answering || answering.has(r.name)))
  const silent = answering ? e.replicas.filter((r) => !answering.has(r.name)).map((r) => `${r.name} (${r.publicIp}:${port}) does not answer`) : []
  const endpoints = port ? ready.flatMap((r) => (r.publicIp ? [`http://${r.publicIp}:${port}`] : [])) : []
  return {
    deploymentId: id,
    exists: e.replicas.length > 0 || e.wanted === 0,
    replicasWanted: e.wanted,
    replicasReady: ready.length,
    endpoints,
    healthy: ready.length === e.wanted,
    placement: [...new Set(e.replicas.map((r) => `node-${r.nodeId}`))].join(','),
    ...(silent.length && { detail: silent.join('; ') }),
  }
}
