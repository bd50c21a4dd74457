/** Find a deployment's replica processes: from its manifest first, then adopted from a /proc scan of the markers. */
import { readProcEnviron, readProcStat, isSameProcess, scanMarkedProcesses, type MarkedProcess } from '../proc.js'
import type { Manifest } from '../manifest.js'
import { DEPLOYMENT, OWNER, type Live, type LocalContext } from './context.js'

/** This operator's marked processes (of deployment `id`, or of every deployment), with the PORT each was given. */
export async function scan(ctx: LocalContext, id: string | undefined, signal: AbortSignal): Promise<(MarkedProcess & { port?: number })[]> {
  const found = await scanMarkedProcesses({ ownerKey: OWNER, owner: ctx.operatorId, deploymentKey: DEPLOYMENT, deploymentId: id, signal })
  return Promise.all(
    found.map(async (m) => {
      const port = Number((await readProcEnviron(m.pid))?.get('PORT'))
      return Number.isInteger(port) && port > 0 ? { ...m, port } : m
    }),
  )
}

/** Our own process with this identity and markers (never a reused pid). */
export async function isOurs(ctx: LocalContext, pid: number, startTime: string, id: string): Promise<boolean> {
  if (!(await isSameProcess(pid, startTime))) return false
  const env = await readProcEnviron(pid)
  return env?.get(OWNER) === ctx.operatorId && env.get(DEPLOYMENT) === id
}

/** Live replicas by index (manifest first, then adopted from /proc), and stray processes to stop. */
export async function discover(ctx: LocalContext, id: string, m: Manifest | undefined, signal: AbortSignal) {
  const byIndex = new Map<number, Live>()
  for (const rec of m?.replicaRecords ?? []) {
    if (rec.pid && rec.startTime && (await isOurs(ctx, rec.pid, rec.startTime, id))) {
      const st = await readProcStat(rec.pid)
      byIndex.set(rec.index, { pid: rec.pid, startTime: rec.startTime, pgrp: st?.pgrp ?? 0, port: rec.port })
    }
  }
  const strays: Live[] = []
  const known = new Set([...byIndex.values()].map((l) => l.pid))
  const leaders = new Set(known)
  const found = await scan(ctx, id, signal)
  for (const proc of found) if (proc.pgrp === proc.pid) leaders.add(proc.pid)
  for (const proc of found) {
    if (known.has(proc.pid)) continue
    // a replica's own children share its process group and go with it
    if (proc.pgrp !== proc.pid && leaders.has(proc.pgrp)) continue
    if (proc.replica !== undefined && !byIndex.has(proc.replica) && proc.pgrp === proc.pid) {
      byIndex.set(proc.replica, { pid: proc.pid, startTime: proc.startTime, pgrp: proc.pgrp, port: proc.port })
      known.add(proc.pid)
    } else strays.push({ pid: proc.pid, startTime: proc.startTime, pgrp: proc.pgrp })
  }
  return { byIndex, strays }
}
