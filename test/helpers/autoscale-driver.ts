/**
 * Test helper: drive one deployment with the autoscaling policy (core/autoscale.ts) the way a reconcile loop would —
 * read status (with its CPU counters) every `tickMs`, turn successive readings into utilisation, ask
 * desiredReplicas, scale — while a load phase keeps every endpoint busy with the demo service's GET /burn. Returns
 * the timeline (time, replicas, utilisation, decision) for the test to check and print.
 */
import { desiredReplicas, utilisationBetween, type AutoscaleParameters, type UtilisationSample } from '../../core/autoscale.js'
import type { DeploymentUsage, Provisioner } from '../../provisioners/types.js'

export type TimelineRow = { t: number; replicas: number; utilisation?: number; decision: string }

export type DriveParameters = {
  provisioner: Provisioner
  deploymentId: string
  vcpuPerReplica: number
  policy: Omit<AutoscaleParameters, 'current' | 'samples' | 'now'>
  /** Load phase length and the quiet phase after it, ms. */
  loadMs: number
  quietMs: number
  tickMs?: number
  /** Concurrent clients during the load phase, each sending /burn requests back to back (a fixed demand). Default 3. */
  clients?: number
}

export async function driveAutoscaling(p: DriveParameters): Promise<TimelineRow[]> {
  const tickMs = p.tickMs ?? 1_000
  const start = Date.now()
  const rows: TimelineRow[] = []
  const samples: UtilisationSample[] = []
  let prev: DeploymentUsage | undefined
  let endpoints: string[] = []
  let loading = true
  // the load: a fixed number of clients, each burning 150 ms of CPU per request, round robin over the current endpoints
  const clients = Array.from({ length: p.clients ?? 3 }, async (_, k) => {
    let n = k
    while (loading) {
      const eps = endpoints
      if (!eps.length) {
        await new Promise((r) => setTimeout(r, 100))
        continue
      }
      await fetch(`${eps[n++ % eps.length]}/burn?ms=150`, { signal: AbortSignal.timeout(10_000) }).then((r) => r.arrayBuffer(), () => undefined)
    }
  })
  const stopLoad = setTimeout(() => (loading = false), p.loadMs)
  try {
    let current = (await p.provisioner.status(p.deploymentId)).replicasWanted
    while (Date.now() - start < p.loadMs + p.quietMs) {
      const st = await p.provisioner.status(p.deploymentId)
      endpoints = st.endpoints
      let u: UtilisationSample | undefined
      if (prev && st.usage) u = utilisationBetween(prev, st.usage, p.vcpuPerReplica, st.replicasWanted)
      if (st.usage) prev = st.usage
      if (u) samples.push(u)
      const now = Date.now()
      const d = desiredReplicas({ ...p.policy, current, samples, now })
      rows.push({ t: Math.round((now - start) / 100) / 10, replicas: current, ...(u && { utilisation: Math.round(u.utilisation * 100) / 100 }), decision: d.reason === 'up' || d.reason === 'down' ? `${d.reason} → ${d.replicas}` : d.reason })
      if (d.replicas !== current) {
        const after = await p.provisioner.scale(p.deploymentId, d.replicas)
        current = d.replicas
        endpoints = after.endpoints
        prev = after.usage
      }
      await new Promise((r) => setTimeout(r, tickMs))
    }
  } finally {
    loading = false
    clearTimeout(stopLoad)
    await Promise.all(clients)
  }
  return rows
}

/** The timeline as printable lines. */
export function formatTimeline(title: string, rows: TimelineRow[]): string {
  return [title, ...rows.map((r) => `  t=${r.t.toFixed(1).padStart(5)} s  replicas=${r.replicas}  utilisation=${r.utilisation === undefined ? '  -  ' : r.utilisation.toFixed(2).padStart(5)}  ${r.decision}`)].join('\n')
}
