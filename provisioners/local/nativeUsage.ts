/**
 * CPU counters of a native deployment's running replicas on the local target: each replica's own cgroup (v1
 * cpuacct.usage where that hierarchy is joined, v2 cpu.stat), found through the manifest's cgroup files, else the
 * cgroup its process is in. A replica without a cgroup of its own (cgroups off) has no reading.
 */
import { dirname, join } from 'node:path'
import { readCgroupCpu, readCgroupDirCpu } from '../cgroupCpu.js'
import type { DeploymentUsage, ReplicaUsage } from '../types.js'
import { readManifest } from './manifest.js'
import { isSameProcess } from './proc.js'

/** Read the counters of deployment `id` under `rootDir`, or undefined when no replica has one. */
export async function readNativeUsage(rootDir: string, id: string, operatorId: string): Promise<DeploymentUsage | undefined> {
  const m = await readManifest(join(rootDir, 'deployments', id)).catch(() => undefined)
  if (!m || m.operatorId !== operatorId) return undefined
  const at = Date.now()
  const replicas: ReplicaUsage[] = []
  for (const r of m.replicaRecords) {
    if (r.index >= m.replicas || !r.pid || !r.startTime || !(await isSameProcess(r.pid, r.startTime))) continue
    let cpu: number | undefined
    for (const f of r.cgroups ?? []) if ((cpu = await readCgroupDirCpu(dirname(f))) !== undefined) break
    cpu ??= await readCgroupCpu(r.pid)
    if (cpu !== undefined) replicas.push({ index: r.index, id: `${r.pid}:${r.startTime}`, cpuSeconds: cpu })
  }
  return replicas.length ? { at, replicas } : undefined
}
