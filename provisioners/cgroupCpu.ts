/**
 * CPU time of a cgroup from its counters: cgroup v1 `cpuacct.usage` (nanoseconds) or v2 `cpu.stat` `usage_usec`.
 * Read for a replica's process (its cgroup found in /proc/<pid>/cgroup) or a cgroup directory the target made.
 * What autoscaling turns into utilisation (core/autoscale.ts).
 */
import { access, readFile } from 'node:fs/promises'
import { join } from 'node:path'

/** Parse /proc/<pid>/cgroup: v1 hierarchies by controller, and the v2 path ("0::<path>"). */
export function parseProcCgroup(text: string): { v1: Map<string, string>; v2?: string } {
  const v1 = new Map<string, string>()
  let v2: string | undefined
  for (const line of text.split('\n')) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line.trim())
    if (!m) continue
    if (m[1] === '0' && m[2] === '') v2 = m[3]
    else for (const c of m[2]!.split(',')) if (c) v1.set(c, m[3]!)
  }
  return v2 === undefined ? { v1 } : { v1, v2 }
}

/** CPU seconds from a v2 `cpu.stat` text (usage_usec), or undefined. */
export function parseCpuStat(text: string): number | undefined {
  const m = /^usage_usec (\d+)$/m.exec(text)
  return m ? Number(m[1]) / 1e6 : undefined
}

/** CPU seconds from a v1 `cpuacct.usage` text (nanoseconds), or undefined. */
export function parseCpuacctUsage(text: string): number | undefined {
  const t = text.trim()
  return /^\d+$/.test(t) ? Number(t) / 1e9 : undefined
}

const exists = (f: string) => access(f).then(() => true, () => false)

/** CPU seconds of a cgroup directory: its cpuacct.usage (v1) or cpu.stat (v2); undefined when it has neither. */
export async function readCgroupDirCpu(dir: string): Promise<number | undefined> {
  const v1 = await readFile(join(dir, 'cpuacct.usage'), 'utf8').catch(() => undefined)
  if (v1 !== undefined) return parseCpuacctUsage(v1)
  const v2 = await readFile(join(dir, 'cpu.stat'), 'utf8').catch(() => undefined)
  return v2 === undefined ? undefined : parseCpuStat(v2)
}

/**
 * CPU seconds of the cgroup process `pid` is in (the whole group: a replica's children count too). Undefined when
 * the process is gone or no counter is readable; on v1 a process in the root cpuacct group (no cgroup of its own) is
 * undefined too, since the root counts the whole machine.
 */
export async function readCgroupCpu(pid: number, root = '/sys/fs/cgroup'): Promise<number | undefined> {
  const text = await readFile(`/proc/${pid}/cgroup`, 'utf8').catch(() => undefined)
  if (text === undefined) return undefined
  const { v1, v2 } = parseProcCgroup(text)
  if (await exists(join(root, 'cgroup.controllers'))) {
    if (v2 === undefined || v2 === '/') return undefined
    return readCgroupDirCpu(join(root, v2))
  }
  const path = v1.get('cpuacct')
  if (path === undefined || path === '/') return undefined
  for (const mount of ['cpuacct', 'cpu,cpuacct', 'cpuacct,cpu']) {
    const got = await readFile(join(root, mount, path, 'cpuacct.usage'), 'utf8').catch(() => undefined)
    if (got !== undefined) return parseCpuacctUsage(got)
  }
  return undefined
}
