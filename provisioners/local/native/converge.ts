/**
 * Bring a deployment's running replicas to what its manifest wants: adopt what runs, stop what is beyond it (and
 * strays), replace replicas of an older artifact (and unhealthy ones on restart), start the missing, wait for health.
 */
import { open } from 'node:fs/promises'
import { ProvisionError } from '../../errors.js'
import { probeHttp, waitForHealthy } from '../../health.js'
import { writeManifest, type Manifest } from '../manifest.js'
import { isSameProcess } from '../proc.js'
import { assignUid } from './assignUid.js'
import { depDir, endpointOf, logFile, type LocalContext } from './context.js'
import { discover } from './discover.js'
import { checkAborted } from './errors.js'
import { startReplica } from './startReplica.js'
import { killCgroupMembers, stopReplicas } from './stopReplicas.js'

/** Bring the running replicas to `m.replicas`, starting, adopting and stopping as needed; waits for health. */
export async function converge(ctx: LocalContext, m: Manifest, signal: AbortSignal, restartUnhealthy: boolean): Promise<void> {
  const id = m.deploymentId
  await assignUid(ctx, m)
  const { byIndex, strays } = await discover(ctx, id, m, signal)
  let changed = false
  for (const [index, live] of byIndex) {
    const rec = m.replicaRecords.find((r) => r.index === index)
    if (!rec) {
      m.replicaRecords.push({ index, port: live.port ?? 0, pid: live.pid, startTime: live.startTime })
      changed = true
    } else if (rec.pid !== live.pid) {
      Object.assign(rec, { pid: live.pid, startTime: live.startTime }, live.port ? { port: live.port } : {})
      changed = true
    }
  }
  if (changed) {
    m.replicaRecords.sort((a, b) => a.index - b.index)
    await writeManifest(depDir(ctx, id), m)
  }
  const extra = [...byIndex].filter(([i]) => i >= m.replicas).map(([, l]) => l)
  if (strays.length) ctx.log.warn({ deploymentId: id, pids: strays.map((s) => s.pid) }, 'stopping duplicate or unknown replica processes')
  await stopReplicas(ctx, m, [...extra, ...strays])
  const cg = await ctx.cgroups()
  const dropped = m.replicaRecords.filter((r) => r.index >= m.replicas)
  for (const r of dropped) {
    await killCgroupMembers(ctx, id, r.cgroups)
    await cg.remove(r.cgroups ?? [])
  }
  if (dropped.length) {
    m.replicaRecords = m.replicaRecords.filter((r) => r.index < m.replicas)
    for (const r of dropped) ctx.reserved.delete(r.port)
    await writeManifest(depDir(ctx, id), m)
  }
  checkAborted(signal, `converge ${id}`)

  const healthPath = m.request.healthPath ?? '/'
  if (restartUnhealthy) {
    for (const [index, live] of byIndex) {
      if (index >= m.replicas || !live.port) continue
      const probe = await probeHttp({ url: `${endpointOf(ctx, live.port)}${healthPath}`, timeoutMs: 3_000, signal })
      if (!probe.ok) {
        ctx.log.warn({ deploymentId: id, replica: index, pid: live.pid, error: probe.error, status: probe.status }, 'restarting unhealthy replica')
        await stopReplicas(ctx, m, [live])
        byIndex.delete(index)
      }
    }
  }
  const sha = m.artifact?.sha256
  for (const [index, live] of byIndex) {
    const rec = m.replicaRecords.find((r) => r.index === index)
    // a replica of an older artifact is replaced by the one now requested
    if (index < m.replicas && rec?.sha256 && sha && rec.sha256 !== sha) {
      await stopReplicas(ctx, m, [live])
      byIndex.delete(index)
    }
  }
  for (let i = 0; i < m.replicas; i++) {
    if (byIndex.has(i)) continue
    checkAborted(signal, `converge ${id}`)
    await startReplica(ctx, m, i, signal)
  }

  const results = await Promise.all(
    m.replicaRecords
      .filter((r) => r.index < m.replicas)
      .map(async (r) => {
        const res = await waitForHealthy({
          url: `${endpointOf(ctx, r.port)}${healthPath}`,
          deadlineMs: ctx.healthTimeoutMs,
          timeoutMs: 3_000,
          signal,
          stillAlive: () => (r.pid && r.startTime ? isSameProcess(r.pid, r.startTime) : false),
        })
        return { r, res }
      }),
  )
  const exited = results.filter((x) => x.res.exited)
  if (exited.length) {
    const details: string[] = []
    for (const { r } of exited) {
      details.push(`replica ${r.index} (pid ${r.pid}) exited; last lines of its log:`)
      for (const line of await logTail(ctx, id, r.index)) details.push(`  ${line}`)
    }
    // retried (up to [deploy] attempts) before the request is refunded: a start-up can fail for a passing reason — its
    // port taken between the check and the bind (another daemon on this machine), memory short for a moment
    throw new ProvisionError(`${exited.length} replica(s) of ${id} exited during start-up`, {
      code: 'PROVISION_FAILED',
      reason: 'PROVISION_FAILED',
      retryable: true,
      details,
      meta: { deploymentId: id },
    })
  }
  const unhealthy = results.filter((x) => !x.res.ok)
  if (unhealthy.length) {
    throw new ProvisionError(`${unhealthy.length} replica(s) of ${id} not healthy after ${ctx.healthTimeoutMs} ms`, {
      code: 'HEALTH_TIMEOUT',
      reason: 'UNHEALTHY',
      retryable: true,
      details: unhealthy.map(({ r, res }) => `replica ${r.index}: GET ${healthPath} on port ${r.port}: ${res.error ?? `HTTP ${res.status}`}`),
      meta: { deploymentId: id },
    })
  }
}

/** The last lines (at most 15, from the last 4 KiB) of replica `i`'s log; none when it cannot be read. */
async function logTail(ctx: LocalContext, id: string, i: number): Promise<string[]> {
  try {
    const fh = await open(logFile(ctx, id, i), 'r')
    try {
      const { size } = await fh.stat()
      const len = Math.min(size, 4096)
      const buf = Buffer.alloc(len)
      await fh.read(buf, 0, len, size - len)
      return buf.toString('utf8').split('\n').filter(Boolean).slice(-15)
    } finally {
      await fh.close()
    }
  } catch {
    return []
  }
}
