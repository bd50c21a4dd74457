/**
 * Resource limits for local replicas through cgroups: v1 (memory, cpu, pids hierarchies, as on hybrid hosts) or v2
 * (unified, with those controllers delegated). Where neither is writable, replicas run without limits.
 */
import { access, mkdir, readFile, readdir, rmdir, stat, writeFile } from 'node:fs/promises'
import { constants } from 'node:fs'
import { join } from 'node:path'
import { sleep } from '../../core/retry.js'

export type CgroupMode = 'v1' | 'v2' | 'none'

export type CgroupLimits = {
  /** Fractional vCPUs; 0 = no CPU limit. */
  vcpu: number
  /** GiB; 0 = no memory limit. */
  memoryGiB: number
  /** Max tasks (processes + threads). */
  pidsMax: number
}

export type Cgroups = {
  mode: CgroupMode
  // v1 also joins a cpuacct group where that hierarchy is mounted apart from cpu, so CPU time can be read per replica
  /** Why limits are off (mode 'none'). */
  reason?: string
  /** Create the replica's cgroup(s) with limits; returns the `cgroup.procs` files the replica must join. */
  prepare(deploymentId: string, replica: number, limits: CgroupLimits): Promise<string[]>
  /**
   * SIGKILL every process in these cgroups (v2: cgroup.kill; v1: each pid of cgroup.procs, repeated until empty),
   * so nothing a replica started survives it, whatever process group or session it moved to. Returns the pids still
   * there when the bounded wait ran out (empty on success).
   */
  kill(procsFiles: string[]): Promise<number[]>
  /** Remove cgroup directories (leaf first); missing ones are fine. */
  remove(procsFiles: string[]): Promise<void>
  /** Kill the processes of every replica cgroup of a deployment under this operator's base; returns the survivors. */
  killDeployment(deploymentId: string): Promise<number[]>
  /** Remove every cgroup of a deployment under this operator's base. */
  removeDeployment(deploymentId: string): Promise<void>
  /** Replica cgroups under this operator's base that still hold processes (leftovers the orphan sweep must see). */
  populated(): Promise<PopulatedCgroup[]>
}

export type PopulatedCgroup = { deploymentId: string; replica: string; dir: string; pids: number[] }

const V1 = ['memory', 'cpu', 'pids'] as const
const SUB = 'blueprint-operator'

const none = (reason: string): Cgroups => ({
  mode: 'none',
  reason,
  prepare: async () => [],
  kill: async () => [],
  remove: async () => undefined,
  killDeployment: async () => [],
  removeDeployment: async () => undefined,
  populated: async () => [],
})

/** Directory name of an operator's level below `blueprint-operator` (the prefix keeps "." and ".." ids harmless). */
const ownerDir = (owner: string) => `op-${owner}`

/** Live (non-zombie) pids listed in a cgroup.procs file; a missing file is an empty group. */
async function members(procsFile: string): Promise<number[]> {
  const text = await readFile(procsFile, 'utf8').catch(() => '')
  const out: number[] = []
  for (const line of text.split('\n')) {
    const pid = Number(line.trim())
    if (!Number.isInteger(pid) || pid <= 1 || pid === process.pid) continue
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined)
    if (stat === undefined) continue
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3)
    if (state !== 'Z' && state !== 'X') out.push(pid)
  }
  return out
}

// a group that forks as fast as it is killed is bounded by pids.max; 100 rounds cover it with room to spare
const KILL_ROUNDS = 100

/** SIGKILL every member of the groups until they are empty (bounded); returns the survivors. */
async function killMembers(procsFiles: string[]): Promise<number[]> {
  let left: number[] = []
  for (let round = 0; round < KILL_ROUNDS; round++) {
    const pids = new Set<number>()
    for (const f of procsFiles) for (const pid of await members(f)) pids.add(pid)
    left = [...pids]
    if (!left.length) return []
    for (const pid of left) {
      try {
        process.kill(pid, 'SIGKILL')
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err
      }
    }
    await sleep(Math.min(100, 10 * (round + 1)))
  }
  return left
}

/** Replica directories (`<base>/<deployment>/<replica>`) under one hierarchy's operator base. */
async function replicaDirs(base: string, deploymentId?: string): Promise<{ deploymentId: string; replica: string; dir: string }[]> {
  const out: { deploymentId: string; replica: string; dir: string }[] = []
  const deps = deploymentId !== undefined ? [deploymentId] : await subdirs(base)
  for (const d of deps) for (const r of await subdirs(join(base, d))) out.push({ deploymentId: d, replica: r, dir: join(base, d, r) })
  return out
}

async function subdirs(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => [])
  return entries.filter((e) => e.isDirectory()).map((e) => e.name)
}

/** Own cgroup path per v1 controller and for v2 ("" key), from /proc/self/cgroup. */
async function ownPaths(file: string): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  for (const line of (await readFile(file, 'utf8')).split('\n')) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line)
    if (!m) continue
    if (m[2] === '') out.set('', m[3]!)
    for (const c of m[2]!.split(',')) if (c) out.set(c, m[3]!)
  }
  return out
}

const writable = async (path: string) =>
  access(path, constants.W_OK).then(
    () => true,
    () => false,
  )

async function rmdirTree(dir: string): Promise<void> {
  let entries: import('node:fs').Dirent[]
  try {
    entries = await readdir(dir, { withFileTypes: true })
  } catch {
    return
  }
  for (const e of entries) if (e.isDirectory()) await rmdirTree(join(dir, e.name))
  // cgroup directories are removed with rmdir even though they list control files
  await rmdir(dir).catch(() => undefined)
}

/**
 * Detect what the host offers. New cgroups nest under this daemon's own cgroup (so the limits of whatever supervises
 * the daemon still apply to its workloads) in a `blueprint-operator` directory.
 */
export async function detectCgroups(p: {
  mode: 'auto' | 'off'
  /** The operator: its cgroups live in their own level (`blueprint-operator/op-<owner>/`), so leftovers are attributable. */
  owner: string
  /** Where the cgroup filesystems are mounted. Default /sys/fs/cgroup. */
  root?: string
  /** This process's cgroup membership. Default /proc/self/cgroup. */
  selfCgroupFile?: string
}): Promise<Cgroups> {
  if (p.mode === 'off') return none('cgroups disabled by configuration')
  const root = p.root ?? '/sys/fs/cgroup'
  try {
    const own = await ownPaths(p.selfCgroupFile ?? '/proc/self/cgroup')
    const v2controllers = await readFile(join(root, 'cgroup.controllers'), 'utf8').catch(() => undefined)
    if (v2controllers !== undefined) return await detectV2(root, own, v2controllers, p.owner)
    const bases: Record<string, string> = {}
    for (const c of V1) {
      const mount = join(root, c)
      const isCgroup = await stat(join(mount, 'cgroup.procs')).then(() => true, () => false)
      if (!isCgroup) return none(`cgroup v1 ${c} hierarchy not mounted at ${mount}`)
      const sub = join(mount, own.get(c) ?? '/', SUB)
      await mkdir(sub, { recursive: true })
      if (!(await writable(join(sub, 'cgroup.procs')))) return none(`${sub} is not writable`)
      // the operator's level is made by the first prepare: an empty one left behind would pin the daemon's cgroup
      bases[c] = join(sub, ownerDir(p.owner))
    }
    // CPU accounting (cpuacct.usage, for autoscaling) where it is a hierarchy of its own; optional: limits work without it
    const acct = join(root, 'cpuacct')
    if (await stat(join(acct, 'cgroup.procs')).then(() => true, () => false)) {
      const sub = join(acct, own.get('cpuacct') ?? '/', SUB)
      if (await mkdir(sub, { recursive: true }).then(() => writable(join(sub, 'cgroup.procs')), () => false)) bases.cpuacct = join(sub, ownerDir(p.owner))
    }
    return v1(bases as Record<(typeof V1)[number], string> & { cpuacct?: string })
  } catch (err) {
    return none(`cgroups unusable: ${(err as Error).message}`)
  }
}

function v1(given: Record<(typeof V1)[number], string> & { cpuacct?: string }): Cgroups {
  const bases = given as Record<string, string>
  const V1 = Object.keys(bases)
  return {
    mode: 'v1',
    async prepare(deploymentId, replica, limits) {
      const files: string[] = []
      for (const c of V1) {
        const dir = join(bases[c]!, deploymentId, String(replica))
        await mkdir(dir, { recursive: true })
        if (c === 'memory' && limits.memoryGiB > 0) {
          await writeFile(join(dir, 'memory.limit_in_bytes'), String(Math.floor(limits.memoryGiB * 1024 ** 3)))
        }
        if (c === 'cpu' && limits.vcpu > 0) {
          await writeFile(join(dir, 'cpu.cfs_period_us'), '100000')
          await writeFile(join(dir, 'cpu.cfs_quota_us'), String(Math.max(1000, Math.round(limits.vcpu * 100_000))))
        }
        if (c === 'pids') await writeFile(join(dir, 'pids.max'), String(limits.pidsMax))
        files.push(join(dir, 'cgroup.procs'))
      }
      return files
    },
    kill: killMembers,
    async remove(procsFiles) {
      for (const f of procsFiles) await rmdir(join(f, '..')).catch(() => undefined)
    },
    async killDeployment(deploymentId) {
      const files: string[] = []
      for (const c of V1) for (const r of await replicaDirs(bases[c]!, deploymentId)) files.push(join(r.dir, 'cgroup.procs'))
      return killMembers(files)
    },
    async removeDeployment(deploymentId) {
      for (const c of V1) {
        await rmdirTree(join(bases[c]!, deploymentId))
        // an empty base would keep the daemon's own cgroup from being removed by its supervisor; prepare recreates it
        await rmdir(bases[c]!).catch(() => undefined)
        await rmdir(join(bases[c]!, '..')).catch(() => undefined)
      }
    },
    async populated() {
      const byDir = new Map<string, PopulatedCgroup>()
      for (const c of V1) {
        for (const r of await replicaDirs(bases[c]!)) {
          const pids = await members(join(r.dir, 'cgroup.procs'))
          const key = `${r.deploymentId}/${r.replica}`
          if (pids.length && !byDir.has(key)) byDir.set(key, { ...r, pids })
        }
      }
      return [...byDir.values()]
    },
  }
}

async function detectV2(root: string, own: Map<string, string>, controllers: string, owner: string): Promise<Cgroups> {
  const have = new Set(controllers.trim().split(/\s+/))
  const missing = ['memory', 'cpu', 'pids'].filter((c) => !have.has(c))
  if (missing.length) return none(`cgroup v2 lacks the ${missing.join(', ')} controller(s)`)
  const parent = join(root, own.get('') ?? '/')
  const sub = join(parent, SUB)
  const base = join(sub, ownerDir(owner))
  // v2 only hands controllers down through subtree_control; a parent with processes of its own may refuse it
  const enable = async (dir: string) => writeFile(join(dir, 'cgroup.subtree_control'), '+memory +cpu +pids')
  try {
    await enable(parent)
    await mkdir(sub, { recursive: true })
    await enable(sub)
  } catch (err) {
    return none(`cgroup v2 controllers cannot be delegated below ${parent}: ${(err as Error).message}`)
  }
  return {
    mode: 'v2',
    async prepare(deploymentId, replica, limits) {
      await mkdir(base, { recursive: true })
      await enable(base)
      const depDir = join(base, deploymentId)
      await mkdir(depDir, { recursive: true })
      await enable(depDir)
      const dir = join(depDir, String(replica))
      await mkdir(dir, { recursive: true })
      if (limits.memoryGiB > 0) await writeFile(join(dir, 'memory.max'), String(Math.floor(limits.memoryGiB * 1024 ** 3)))
      if (limits.vcpu > 0) await writeFile(join(dir, 'cpu.max'), `${Math.max(1000, Math.round(limits.vcpu * 100_000))} 100000`)
      await writeFile(join(dir, 'pids.max'), String(limits.pidsMax))
      return [join(dir, 'cgroup.procs')]
    },
    kill: killV2,
    async remove(procsFiles) {
      for (const f of procsFiles) await rmdir(join(f, '..')).catch(() => undefined)
    },
    async killDeployment(deploymentId) {
      return killV2((await replicaDirs(base, deploymentId)).map((r) => join(r.dir, 'cgroup.procs')))
    },
    async removeDeployment(deploymentId) {
      await rmdirTree(join(base, deploymentId))
      await rmdir(base).catch(() => undefined)
    },
    async populated() {
      const out: PopulatedCgroup[] = []
      for (const r of await replicaDirs(base)) {
        const pids = await members(join(r.dir, 'cgroup.procs'))
        if (pids.length) out.push({ ...r, pids })
      }
      return out
    },
  }
}

/** cgroup.kill (Linux 5.14+) kills the whole group at once, forks in flight included; older kernels get the loop. */
async function killV2(procsFiles: string[]): Promise<number[]> {
  for (const f of procsFiles) {
    // r+: never create the file where the kernel does not offer it
    await writeFile(join(f, '..', 'cgroup.kill'), '1', { flag: 'r+' }).catch(() => undefined)
  }
  return killMembers(procsFiles)
}
