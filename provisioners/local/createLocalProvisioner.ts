/**
 * The local provisioner: runs a native artifact as real child processes on this machine, one per replica, detached
 * so they outlive the daemon; a restarted daemon adopts them from the manifests and a /proc scan of ownership markers.
 */
import { execFileSync, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { accessSync, constants as fsConstants } from 'node:fs'
import { chmod, chown, copyFile, lchown, lstat, mkdir, open, readdir, rename, rm, rmdir, stat } from 'node:fs/promises'
import { createServer } from 'node:net'
import { hostname } from 'node:os'
import { dirname, join } from 'node:path'
import type { Common } from '../../core/common.js'
import { AbortedError } from '../../core/errors.js'
import { faultPoint } from '../../core/faults.js'
import { sleep, withTimeout } from '../../core/retry.js'
import { allowListProblems } from '../artifacts/addressPolicy.js'
import { fetchArtifact } from '../artifacts/fetchArtifact.js'
import { sha256File } from '../artifacts/sha256File.js'
import { assertEnvAllowed } from '../envPolicy.js'
import { ProvisionError } from '../errors.js'
import { probeHttp, waitForHealthy } from '../health.js'
import type { CallOptions, DeploymentRequest, DeploymentStatus, OwnedResource, Provisioner, SourceKind } from '../types.js'
import { chooseWorkloadUid, inUidRange, localAccountsInRange, uidRangeProblems, type UidRange } from '../../core/workloadUids.js'
import { detectCgroups, type Cgroups } from './cgroups.js'
import { withStableEndpoints } from '../balancer/withStableEndpoints.js'
import { readManifest, writeManifest, type Manifest, type ReplicaRecord } from './manifest.js'
import { replicaPorts } from './replicaPorts.js'
import { isSameProcess, readProcEnviron, readProcStat, scanMarkedProcesses, type MarkedProcess } from './proc.js'
import { withContainers, type LocalContainerOptions, type LocalProvisioner } from './withContainers.js'

export type LocalProvisionerParameters = {
  /** Holds `cache/` (artifacts by sha256) and `deployments/<id>/` (manifest, data, logs). */
  rootDir: string
  /** Ownership marker put in every replica's environment (BPO_OWNER). */
  operatorId: string
  /** Address replicas listen on (HOST). Default 127.0.0.1. */
  host?: string
  /** Ports handed out as PORT, inclusive. Default [20000, 32000] (below Linux's ephemeral range). */
  portRange?: [number, number]
  /** How long a replica may take to answer its health path, ms. Default 60_000. */
  healthTimeoutMs?: number
  /** Artifact download timeout, ms. Default 120_000. */
  downloadTimeoutMs?: number
  /** Artifact size cap, bytes. Default 512 MiB. */
  maxArtifactBytes?: number
  /** Non-public artifact hosts (names, addresses, CIDRs) downloads may reach anyway; default none (see addressPolicy). */
  artifactAllowHosts?: readonly string[]
  /** Resource limits through cgroups where writable ('auto'), or never ('off'). Default 'auto'. */
  cgroups?: 'auto' | 'off'
  /** Time between SIGTERM and SIGKILL when stopping a replica, ms. Default 10_000. */
  stopGraceMs?: number
  /** pids.max of each replica's cgroup. Default 1024. */
  pidsMax?: number
  /** Largest replica count accepted. Default 64. */
  maxReplicas?: number
  /** A replica's log above this size is moved to `.1` when the replica (re)starts, bytes. Default 16 MiB. */
  maxLogBytes?: number
  /**
   * Run replicas as this existing unprivileged user (through setpriv; the daemon must be root): their data dir is
   * theirs, while the artifact copy, manifest, logs and cgroups stay root's, so a workload can rewrite none of them
   * nor leave its cgroups. Default: the daemon's own user.
   */
  workloadUser?: string
  /**
   * Run each deployment as a uid of its own from this inclusive range (through setpriv, no /etc/passwd entry needed;
   * the daemon must be root): a workload can then read neither the daemon's environment, files and state, nor another
   * deployment's files. The uid is recorded in the manifest and reused on every restart. Excludes `workloadUser`.
   */
  workloadUids?: UidRange
  /** One stable endpoint per deployment: a balancing port in this process in front of the replicas. Default true. */
  stableEndpoints?: boolean
} & LocalContainerOptions

const OWNER = 'BPO_OWNER'
const DEPLOYMENT = 'BPO_DEPLOYMENT'
const DEPLOYMENT_ID = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/
// joins the cgroups first, then becomes the artifact: the artifact never runs outside its limits
const JOIN_AND_EXEC = 'a="$0"; for f in "$@"; do echo $$ > "$f" || exit 97; done; exec "$a"'
// the same, still as root (joining needs it and the workload must not be able to leave), then the privilege drop
// (the arguments after the cgroup files) execs the artifact: `sh -c ... <bin> <n> <procs files...> <setpriv argv...>`
const JOIN_DROP_AND_EXEC = 'a="$0"; n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit 97; shift; n=$((n-1)); done; exec "$@" "$a"'
const USER_NAME = /^[a-z_][a-z0-9_-]{0,31}$/

type WorkloadUser = { name: string; uid: number; gid: number; setpriv: string }

const configInvalid = (message: string) => new ProvisionError(message, { code: 'CONFIG_INVALID' })

/** setpriv's path; throws CONFIG_INVALID naming `what` when none is found. */
function findSetpriv(what: string): string {
  const dirs = [...(process.env.PATH ?? '').split(':').filter((d) => d.startsWith('/')), '/usr/bin', '/bin', '/usr/sbin', '/sbin']
  const setpriv = dirs.map((d) => join(d, 'setpriv')).find((f) => {
    try {
      accessSync(f, fsConstants.X_OK)
      return true
    } catch {
      return false
    }
  })
  if (!setpriv) throw configInvalid(`${what} needs setpriv (util-linux), found in none of ${dirs.join(':')}`)
  return setpriv
}

/** The workload user's ids and setpriv, checked once at construction (the daemon must be root to switch users). */
function resolveWorkloadUser(name: string): WorkloadUser {
  if (!USER_NAME.test(name)) throw configInvalid(`workloadUser: got ${JSON.stringify(name)}, expected a POSIX user name`)
  if (process.getuid?.() !== 0) throw configInvalid(`workloadUser ${name} needs the daemon to run as root (it runs as uid ${process.getuid?.()})`)
  const setpriv = findSetpriv(`workloadUser ${name}`)
  // id(1) asks NSS, so users from LDAP and the like are found too
  const idOf = (flag: '-u' | '-g') => {
    try {
      return Number(execFileSync('id', [flag, name], { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'ignore'] }).trim())
    } catch {
      return NaN
    }
  }
  const uid = idOf('-u')
  const gid = idOf('-g')
  if (!Number.isInteger(uid) || !Number.isInteger(gid)) throw configInvalid(`workloadUser: no user ${name} on this host`)
  if (uid === 0 || gid === 0) throw configInvalid(`workloadUser ${name} is privileged (uid ${uid}, gid ${gid}); expected an unprivileged user`)
  return { name, uid, gid, setpriv }
}

/** chown a tree without following symbolic links (whatever the workload linked there stays untouched). */
async function chownTree(path: string, uid: number, gid: number): Promise<void> {
  const st = await lstat(path)
  await lchown(path, uid, gid)
  if (!st.isDirectory()) return
  for (const name of await readdir(path)) await chownTree(join(path, name), uid, gid)
}

type Live = { pid: number; startTime: string; pgrp: number; port?: number }

const invalid = (problems: string[]) =>
  new ProvisionError('invalid deployment request', { code: 'REQUEST_INVALID', reason: 'MALFORMED_REQUEST', details: problems })

const notFound = (id: string) =>
  new ProvisionError(`deployment ${id} does not exist on this host`, { code: 'DEPLOYMENT_NOT_FOUND', reason: 'PROVISION_FAILED', meta: { deploymentId: id } })

function checkAborted(signal: AbortSignal, what: string) {
  if (signal.aborted) throw new AbortedError(what, signal.reason)
}

/** Create the local provisioner (sources: native, testing; container where podman works). Throws on invalid parameters. */
export function createLocalProvisioner(common: Common, p: LocalProvisionerParameters): LocalProvisioner {
  const log = common.logger
  if (!p.rootDir) throw new ProvisionError('rootDir is required', { code: 'CONFIG_INVALID' })
  if (!/^[A-Za-z0-9._:-]{1,128}$/.test(p.operatorId ?? '')) {
    throw new ProvisionError(`operatorId must be 1-128 characters of [A-Za-z0-9._:-]`, { code: 'CONFIG_INVALID' })
  }
  const allowProblems = allowListProblems(p.artifactAllowHosts ?? [])
  if (allowProblems.length) throw new ProvisionError(`artifactAllowHosts: ${allowProblems.join('; ')}`, { code: 'CONFIG_INVALID' })
  if (p.workloadUser !== undefined && p.workloadUids !== undefined) throw configInvalid('workloadUser and workloadUids exclude each other')
  const sharedUser = p.workloadUser !== undefined ? resolveWorkloadUser(p.workloadUser) : undefined
  const uidRange = p.workloadUids
  let uidSetpriv = ''
  if (uidRange) {
    const problems = uidRangeProblems(uidRange)
    if (problems.length) throw configInvalid(`workloadUids: ${problems.join('; ')}`)
    if (process.getuid?.() !== 0) throw configInvalid(`workloadUids needs the daemon to run as root (it runs as uid ${process.getuid?.()})`)
    const accounts = localAccountsInRange(uidRange)
    if (accounts.length) throw configInvalid(`workloadUids [${uidRange.join(', ')}] holds existing accounts (${accounts.slice(0, 5).join(', ')}${accounts.length > 5 ? ', ...' : ''}); reserve a range no user or group uses`)
    uidSetpriv = findSetpriv('workloadUids')
  }
  /** Who a deployment's replicas run as: its own uid (recorded in the manifest), the shared user, or the daemon. */
  const userOf = (m: Manifest): WorkloadUser | undefined =>
    uidRange && m.uid !== undefined ? { name: `uid ${m.uid}`, uid: m.uid, gid: m.uid, setpriv: uidSetpriv } : sharedUser
  const host = p.host ?? '127.0.0.1'
  const urlHost = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host
  const endpointOf = (port: number) => `http://${urlHost.includes(':') ? `[${urlHost}]` : urlHost}:${port}`
  const [portLo, portHi] = p.portRange ?? [20000, 32000]
  if (!(Number.isInteger(portLo) && Number.isInteger(portHi) && portLo >= 1 && portHi <= 65535 && portLo <= portHi)) {
    throw new ProvisionError(`portRange must be two ports low <= high`, { code: 'CONFIG_INVALID' })
  }
  const healthTimeoutMs = p.healthTimeoutMs ?? 60_000
  const downloadTimeoutMs = p.downloadTimeoutMs ?? 120_000
  const stopGraceMs = p.stopGraceMs ?? 10_000
  const pidsMax = p.pidsMax ?? 1024
  const maxReplicas = p.maxReplicas ?? 64
  const maxLogBytes = p.maxLogBytes ?? 16 * 1024 * 1024
  const longCallMs = downloadTimeoutMs + healthTimeoutMs + 2 * stopGraceMs + 30_000
  const shortCallMs = 30_000
  const placement = hostname()
  const sourceKinds: readonly SourceKind[] = ['native', 'testing']

  const cacheDir = join(p.rootDir, 'cache')
  const deploymentsDir = join(p.rootDir, 'deployments')
  const depDir = (id: string) => join(deploymentsDir, id)
  const logFile = (id: string, i: number) => join(depDir(id), 'logs', `replica-${i}.log`)

  const started = common.metrics.counter('bpo_local_replicas_started_total', 'Replica processes started by the local provisioner')
  const stopped = common.metrics.counter('bpo_local_replicas_stopped_total', 'Replica processes stopped by the local provisioner')

  let cgroups: Promise<Cgroups> | undefined
  const getCgroups = () =>
    (cgroups ??= detectCgroups({ mode: p.cgroups ?? 'auto', owner: p.operatorId }).then((cg) => {
      if (cg.mode === 'none' && p.cgroups !== 'off') log.warn({ reason: cg.reason }, 'no cgroups available: replicas run without resource limits')
      else log.debug({ mode: cg.mode }, 'cgroups in use for replica limits')
      return cg
    }))

  // one operation per deployment at a time inside this daemon
  const locks = new Map<string, Promise<void>>()
  async function locked<T>(id: string, signal: AbortSignal, fn: () => Promise<T>): Promise<T> {
    const prev = locks.get(id) ?? Promise.resolve()
    let release!: () => void
    const mine = new Promise<void>((r) => (release = r))
    const chain = prev.then(() => mine)
    locks.set(id, chain)
    try {
      await prev
      checkAborted(signal, `local ${id}`)
      return await fn()
    } finally {
      release()
      if (locks.get(id) === chain) locks.delete(id)
    }
  }

  let closed = false
  function call<T>(what: string, ms: number, o: CallOptions | undefined, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    if (closed) return Promise.reject(new ProvisionError('local provisioner is closed', { code: 'PROVISIONER_CLOSED' }))
    return withTimeout(what, o?.timeoutMs ?? ms, fn, o?.signal)
  }

  function validate(req: DeploymentRequest): void {
    // the same env policy as the SSH target: the /bin/sh wrapper that joins the cgroups runs with this env too
    assertEnvAllowed(req.env)
    const problems: string[] = []
    if (typeof req.deploymentId !== 'string' || !DEPLOYMENT_ID.test(req.deploymentId)) {
      problems.push(`deploymentId: got ${JSON.stringify(req.deploymentId)}, expected a DNS label`)
    }
    if (!/^\d{1,78}$/.test(String(req.serviceId))) problems.push(`serviceId: got ${JSON.stringify(req.serviceId)}, expected a decimal string`)
    if (!/^\d{1,78}$/.test(String(req.blueprintId))) problems.push(`blueprintId: got ${JSON.stringify(req.blueprintId)}, expected a decimal string`)
    for (const k of ['vcpu', 'memoryGiB'] as const) {
      const v = req.spec?.[k]
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) problems.push(`spec.${k}: got ${v}, expected a finite number >= 0`)
    }
    const r = req.spec?.replicas
    if (!Number.isInteger(r) || r < 0 || r > maxReplicas) problems.push(`spec.replicas: got ${r}, expected an integer 0..${maxReplicas}`)
    if (req.healthPath !== undefined && !/^\/[^\s]*$/.test(req.healthPath)) problems.push(`healthPath: got ${JSON.stringify(req.healthPath)}, expected a path starting with /`)
    if (problems.length) throw invalid(problems)
    if (!sourceKinds.includes(req.source?.kind)) {
      throw new ProvisionError(`the local target cannot run ${String(req.source?.kind)} sources`, {
        code: 'SOURCE_KIND_UNSUPPORTED',
        reason: 'PROVISION_FAILED',
        meta: { deploymentId: req.deploymentId },
      })
    }
  }

  function ownManifest(m: Manifest): Manifest {
    if (m.operatorId !== p.operatorId) {
      throw new ProvisionError(`deployment ${m.deploymentId} in ${p.rootDir} belongs to operator ${m.operatorId}`, {
        code: 'DEPLOYMENT_FOREIGN',
        meta: { deploymentId: m.deploymentId },
      })
    }
    return m
  }

  function validateId(id: string): void {
    if (typeof id !== 'string' || !DEPLOYMENT_ID.test(id)) throw invalid([`deploymentId: got ${JSON.stringify(id)}, expected a DNS label`])
  }

  async function scan(id: string | undefined, signal: AbortSignal): Promise<(MarkedProcess & { port?: number })[]> {
    const found = await scanMarkedProcesses({ ownerKey: OWNER, owner: p.operatorId, deploymentKey: DEPLOYMENT, deploymentId: id, signal })
    return Promise.all(
      found.map(async (m) => {
        const port = Number((await readProcEnviron(m.pid))?.get('PORT'))
        return Number.isInteger(port) && port > 0 ? { ...m, port } : m
      }),
    )
  }

  /** Our own process with this identity and markers (never a reused pid). */
  async function isOurs(pid: number, startTime: string, id: string): Promise<boolean> {
    if (!(await isSameProcess(pid, startTime))) return false
    const env = await readProcEnviron(pid)
    return env?.get(OWNER) === p.operatorId && env.get(DEPLOYMENT) === id
  }

  /** Live replicas by index (manifest first, then adopted from /proc), and stray processes to stop. */
  async function discover(id: string, m: Manifest | undefined, signal: AbortSignal) {
    const byIndex = new Map<number, Live>()
    for (const rec of m?.replicaRecords ?? []) {
      if (rec.pid && rec.startTime && (await isOurs(rec.pid, rec.startTime, id))) {
        const st = await readProcStat(rec.pid)
        byIndex.set(rec.index, { pid: rec.pid, startTime: rec.startTime, pgrp: st?.pgrp ?? 0, port: rec.port })
      }
    }
    const strays: Live[] = []
    const known = new Set([...byIndex.values()].map((l) => l.pid))
    const leaders = new Set(known)
    const found = await scan(id, signal)
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

  async function stopProcess(proc: { pid: number; startTime: string }): Promise<void> {
    const send = async (sig: NodeJS.Signals) => {
      if (!(await isSameProcess(proc.pid, proc.startTime))) return false
      const st = await readProcStat(proc.pid)
      try {
        // signal the whole group only when it is the replica's own group
        process.kill(st?.pgrp === proc.pid ? -proc.pid : proc.pid, sig)
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err
      }
      return true
    }
    if (!(await send('SIGTERM'))) return
    const gone = async (ms: number) => {
      const end = Date.now() + ms
      while (Date.now() < end) {
        if (!(await isSameProcess(proc.pid, proc.startTime))) return true
        await sleep(50)
      }
      return !(await isSameProcess(proc.pid, proc.startTime))
    }
    if (await gone(stopGraceMs)) return
    log.warn({ pid: proc.pid, graceMs: stopGraceMs }, 'replica ignored SIGTERM; sending SIGKILL')
    await send('SIGKILL')
    if (!(await gone(10_000))) throw new ProvisionError(`process ${proc.pid} survived SIGKILL`, { code: 'STOP_FAILED', retryable: true })
  }

  /** SIGKILL whatever is still in these cgroups: children that left the replica's process group or session. */
  async function killCgroupMembers(id: string, procsFiles: string[] | undefined): Promise<void> {
    if (!procsFiles?.length) return
    const left = await (await getCgroups()).kill(procsFiles)
    if (left.length) throw new ProvisionError(`processes ${left.join(', ')} of ${id} survived SIGKILL`, { code: 'STOP_FAILED', retryable: true, meta: { deploymentId: id } })
  }

  async function portFree(port: number): Promise<boolean> {
    const srv = createServer()
    return new Promise<boolean>((resolve) => {
      srv.once('error', () => resolve(false))
      srv.listen({ port, host, exclusive: true }, () => srv.close(() => resolve(true)))
    })
  }

  // ports handed out by this daemon whose replica may not have bound yet
  const reserved = new Map<number, string>()
  async function allocatePort(id: string, signal: AbortSignal): Promise<number> {
    const taken = new Set<number>(reserved.keys())
    for (const name of await readdir(deploymentsDir).catch(() => [] as string[])) {
      const m = await readManifest(depDir(name)).catch(() => undefined)
      for (const r of m?.replicaRecords ?? []) taken.add(r.port)
    }
    const span = portHi - portLo + 1
    const start = Math.floor(Math.random() * span)
    for (let k = 0; k < span; k++) {
      if (k % 64 === 0) checkAborted(signal, 'port allocation')
      const port = portLo + ((start + k) % span)
      if (taken.has(port)) continue
      if (await portFree(port)) {
        reserved.set(port, id)
        return port
      }
    }
    throw new ProvisionError(`no free port in ${portLo}-${portHi}`, { code: 'NO_FREE_PORT', retryable: true })
  }

  async function logTail(id: string, i: number): Promise<string[]> {
    try {
      const fh = await open(logFile(id, i), 'r')
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

  /**
   * The deployment's own read-only copy of its artifact (`bin/<sha256>`), hashed right before it is spawned: the
   * shared cache (writable by anything running as this user, a stopping replica included) is only ever copied from
   * after it verified, and a copy that no longer matches is made again from freshly verified bytes.
   */
  async function verifiedCopy(m: Manifest, signal: AbortSignal): Promise<string> {
    const a = m.artifact!
    const dest = join(depDir(m.deploymentId), 'bin', a.sha256)
    if ((await sha256File(dest, signal).catch(() => undefined)) === a.sha256) {
      await lockDown(dest, userOf(m))
      return dest
    }
    await mkdir(dirname(dest), { recursive: true, mode: 0o700 })
    for (let attempt = 0; attempt < 2; attempt++) {
      // fetchArtifact re-verifies the cache entry and fetches again when it was modified
      await ensureArtifact(m, signal)
      const tmp = `${dest}.${randomBytes(4).toString('hex')}.tmp`
      try {
        await copyFile(m.artifact!.path, tmp)
        await chmod(tmp, 0o500)
        if ((await sha256File(tmp, signal)) === a.sha256) {
          await lockDown(tmp, userOf(m))
          await rename(tmp, dest)
          return dest
        }
      } finally {
        await rm(tmp, { force: true })
      }
      log.warn({ deploymentId: m.deploymentId, path: m.artifact!.path }, 'cached artifact changed after it was verified; fetching it again')
    }
    throw new ProvisionError(`the artifact of ${m.deploymentId} keeps changing after verification`, { code: 'ARTIFACT_MODIFIED', reason: 'PROVISION_FAILED', retryable: true, meta: { deploymentId: m.deploymentId } })
  }

  /**
   * With a workload user, the copy it runs stays root's and read-only, readable and executable by the user's group
   * only (a script artifact is read by its interpreter), in a directory it can traverse but not list or write.
   */
  async function lockDown(bin: string, user: WorkloadUser | undefined): Promise<void> {
    if (!user) return
    await chown(bin, 0, user.gid)
    await chmod(bin, 0o550)
    await chmod(dirname(bin), 0o711)
  }

  /**
   * With a workload user: the data dir becomes the user's, everything around it stays root's and closed (the
   * deployment dirs traversable only, the logs' dir private: the replica only gets its log's descriptor).
   */
  async function confine(id: string, dataDir: string, logsDir: string, user: WorkloadUser | undefined): Promise<void> {
    if (!user) return
    // with a uid per deployment, nothing above the deployments is listable, and the artifact cache is the daemon's
    if (uidRange) {
      await chmod(p.rootDir, 0o711)
      await chmod(cacheDir, 0o700).catch(() => undefined)
    }
    await chmod(deploymentsDir, 0o711)
    await chmod(depDir(id), 0o711)
    await chmod(logsDir, 0o700)
    const st = await lstat(dataDir)
    if (!st.isDirectory()) throw new ProvisionError(`${dataDir} is not a directory`, { code: 'PROVISION_FAILED', reason: 'PROVISION_FAILED', meta: { deploymentId: id } })
    if (st.uid !== user.uid || st.gid !== user.gid) {
      // files the daemon's own user left there (replicas run before workloadUser was set) become the user's; a tree
      // of another unprivileged user is not walked: it could swap a directory for a link while we walk it
      if (st.uid === process.getuid?.()) await chownTree(dataDir, user.uid, user.gid)
      else {
        log.warn({ deploymentId: id, dataDir, owner: st.uid }, 'data dir belongs to another user; only the directory itself is handed over')
        await lchown(dataDir, user.uid, user.gid)
      }
    }
    await chmod(dataDir, 0o700)
    // every directory above the data dir must let the user through, or the replica could not even start
    for (let dir = dirname(dataDir); ; dir = dirname(dir)) {
      const d = await stat(dir)
      const ok = d.mode & 0o001 || (d.gid === user.gid && d.mode & 0o010) || (d.uid === user.uid && d.mode & 0o100)
      if (!ok) {
        throw new ProvisionError(`workload user ${user.name} cannot reach ${dataDir}: ${dir} (mode ${(d.mode & 0o777).toString(8)}) is not searchable by it`, {
          code: 'CONFIG_INVALID',
          meta: { deploymentId: id },
        })
      }
      if (dir === dirname(dir)) break
    }
  }

  async function startReplica(m: Manifest, index: number, signal: AbortSignal): Promise<ReplicaRecord> {
    const id = m.deploymentId
    const req = m.request
    if (!m.artifact) throw new ProvisionError('no verified artifact for this deployment', { code: 'ARTIFACT_MISSING', retryable: true })
    let rec = m.replicaRecords.find((r) => r.index === index)
    if (!rec) {
      rec = { index, port: 0 }
      m.replicaRecords.push(rec)
      m.replicaRecords.sort((a, b) => a.index - b.index)
    }
    if (!rec.port || !(await portFree(rec.port))) rec.port = await allocatePort(id, signal)
    else reserved.set(rec.port, id)
    const cg = await getCgroups()
    let procs: string[] = []
    try {
      procs = await cg.prepare(id, index, { vcpu: req.spec.vcpu, memoryGiB: req.spec.memoryGiB, pidsMax })
    } catch (err) {
      log.warn({ err, deploymentId: id, replica: index }, 'cgroup setup failed; this replica runs without limits')
    }
    // the replica is not running: anything still in its cgroup is left from an earlier incarnation
    await killCgroupMembers(id, procs)
    rec.cgroups = procs
    rec.sha256 = m.artifact.sha256
    delete rec.pid
    delete rec.startTime
    checkAborted(signal, `start of ${id} replica ${index}`)
    await writeManifest(depDir(id), m)
    faultPoint('local.intent-recorded')
    checkAborted(signal, `start of ${id} replica ${index}`)

    const dataDir = join(depDir(id), 'data')
    await mkdir(dataDir, { recursive: true })
    await mkdir(dirname(logFile(id, index)), { recursive: true })
    const user = userOf(m)
    await confine(id, dataDir, dirname(logFile(id, index)), user)
    const env: Record<string, string> = {
      // the daemon's own node first: native artifacts that are Node scripts run with the node that runs the daemon
      PATH: `${dirname(process.execPath)}:${process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'}`,
      HOME: dataDir,
      ...(req.env ?? {}),
      PORT: String(rec.port),
      HOST: host,
      SERVICE_ID: req.serviceId,
      BLUEPRINT_ID: req.blueprintId,
      DEPLOYMENT_ID: id,
      REPLICA_INDEX: String(index),
      DATA_DIR: dataDir,
      [OWNER]: p.operatorId,
      [DEPLOYMENT]: id,
    }
    const logSize = await stat(logFile(id, index)).then((st) => st.size, () => 0)
    if (logSize > maxLogBytes) await rename(logFile(id, index), `${logFile(id, index)}.1`)
    const out = await open(logFile(id, index), 'a', 0o640)
    let spawnError: Error | undefined
    let pid: number | undefined
    try {
      await out.write(`--- ${new Date().toISOString()} starting replica ${index} on port ${rec.port}\n`)
      const bin = await verifiedCopy(m, signal)
      const opts = { cwd: depDir(id), env, detached: true, stdio: ['ignore', out.fd, out.fd] as ['ignore', number, number] }
      // all uids and gids become the user's (so no way back to root), no supplementary groups, no gaining privileges
      const drop = user ? [user.setpriv, `--reuid=${user.uid}`, `--regid=${user.gid}`, '--clear-groups', '--no-new-privs', '--inh-caps=-all', '--'] : []
      const child = user
        ? procs.length
          ? spawn('/bin/sh', ['-c', JOIN_DROP_AND_EXEC, bin, String(procs.length), ...procs, ...drop], opts)
          : spawn(user.setpriv, [...drop.slice(1), bin], opts)
        : procs.length
          ? spawn('/bin/sh', ['-c', JOIN_AND_EXEC, bin, ...procs], opts)
          : spawn(bin, [], opts)
      child.on('error', (err) => (spawnError = err))
      child.unref()
      pid = child.pid
    } finally {
      await out.close()
    }
    await new Promise((r) => setImmediate(r))
    if (!pid || spawnError) {
      throw new ProvisionError(`replica ${index} of ${id} could not be started`, { code: 'PROVISION_FAILED', reason: 'PROVISION_FAILED', cause: spawnError })
    }
    started.inc()
    faultPoint('local.spawned-unrecorded')
    const st = await readProcStat(pid)
    rec.pid = pid
    // a process already gone gets an impossible start time, so it never matches anything alive
    rec.startTime = st?.startTime ?? 'exited'
    rec.startedAt = new Date().toISOString()
    await writeManifest(depDir(id), m)
    log.info({ deploymentId: id, replica: index, pid, port: rec.port, cgroups: procs.length > 0 }, 'replica started')
    return rec
  }

  async function stopReplicas(m: Manifest | undefined, procs: Live[]): Promise<void> {
    await Promise.all(procs.map((l) => stopProcess(l)))
    stopped.inc({}, procs.length)
    if (m) for (const l of procs) for (const [port, owner] of reserved) if (owner === m.deploymentId && port === l.port) reserved.delete(port)
  }

  // choosing a uid is one step across deployments: reading every manifest's uid and recording this one
  let uidLock: Promise<unknown> = Promise.resolve()
  /** Give the deployment its own uid from the range (once: a recorded uid inside the range is kept for good). */
  async function assignUid(m: Manifest): Promise<void> {
    const range = uidRange
    if (!range || inUidRange(m.uid, range)) return
    const run = uidLock.then(async () => {
      const taken = new Set<number>()
      for (const name of await readdir(deploymentsDir).catch(() => [] as string[])) {
        if (name === m.deploymentId) continue
        // every manifest in the root counts, another operator's included
        const other = await readManifest(depDir(name)).catch(() => undefined)
        if (typeof other?.uid === 'number') taken.add(other.uid)
      }
      const uid = chooseWorkloadUid(`${p.operatorId}\0${m.deploymentId}`, range, taken)
      if (uid === undefined) {
        throw new ProvisionError(`every workload uid of [${range.join(', ')}] is held by another deployment`, {
          code: 'NO_FREE_UID',
          reason: 'NO_FEASIBLE_OFFER',
          retryable: true,
          meta: { deploymentId: m.deploymentId },
        })
      }
      if (m.uid !== undefined) log.warn({ deploymentId: m.deploymentId, was: m.uid, uid }, 'recorded workload uid is outside the configured range; assigning a new one')
      m.uid = uid
      await writeManifest(depDir(m.deploymentId), m)
      log.info({ deploymentId: m.deploymentId, uid }, 'workload uid assigned')
    })
    uidLock = run.catch(() => undefined)
    await run
  }

  /** Bring the running replicas to `m.replicas`, starting, adopting and stopping as needed; waits for health. */
  async function converge(m: Manifest, signal: AbortSignal, restartUnhealthy: boolean): Promise<void> {
    const id = m.deploymentId
    await assignUid(m)
    const { byIndex, strays } = await discover(id, m, signal)
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
      await writeManifest(depDir(id), m)
    }
    const extra = [...byIndex].filter(([i]) => i >= m.replicas).map(([, l]) => l)
    if (strays.length) log.warn({ deploymentId: id, pids: strays.map((s) => s.pid) }, 'stopping duplicate or unknown replica processes')
    await stopReplicas(m, [...extra, ...strays])
    const cg = await getCgroups()
    const dropped = m.replicaRecords.filter((r) => r.index >= m.replicas)
    for (const r of dropped) {
      await killCgroupMembers(id, r.cgroups)
      await cg.remove(r.cgroups ?? [])
    }
    if (dropped.length) {
      m.replicaRecords = m.replicaRecords.filter((r) => r.index < m.replicas)
      for (const r of dropped) reserved.delete(r.port)
      await writeManifest(depDir(id), m)
    }
    checkAborted(signal, `converge ${id}`)

    const healthPath = m.request.healthPath ?? '/'
    if (restartUnhealthy) {
      for (const [index, live] of byIndex) {
        if (index >= m.replicas || !live.port) continue
        const probe = await probeHttp({ url: `${endpointOf(live.port)}${healthPath}`, timeoutMs: 3_000, signal })
        if (!probe.ok) {
          log.warn({ deploymentId: id, replica: index, pid: live.pid, error: probe.error, status: probe.status }, 'restarting unhealthy replica')
          await stopReplicas(m, [live])
          byIndex.delete(index)
        }
      }
    }
    const sha = m.artifact?.sha256
    for (const [index, live] of byIndex) {
      const rec = m.replicaRecords.find((r) => r.index === index)
      // a replica of an older artifact is replaced by the one now requested
      if (index < m.replicas && rec?.sha256 && sha && rec.sha256 !== sha) {
        await stopReplicas(m, [live])
        byIndex.delete(index)
      }
    }
    const fresh: number[] = []
    for (let i = 0; i < m.replicas; i++) {
      if (byIndex.has(i)) continue
      checkAborted(signal, `converge ${id}`)
      await startReplica(m, i, signal)
    }

    const results = await Promise.all(
      m.replicaRecords
        .filter((r) => r.index < m.replicas)
        .map(async (r) => {
          const res = await waitForHealthy({
            url: `${endpointOf(r.port)}${healthPath}`,
            deadlineMs: healthTimeoutMs,
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
        for (const line of await logTail(id, r.index)) details.push(`  ${line}`)
      }
      throw new ProvisionError(`${exited.length} replica(s) of ${id} exited during start-up`, {
        code: 'PROVISION_FAILED',
        reason: 'PROVISION_FAILED',
        details,
        meta: { deploymentId: id },
      })
    }
    const unhealthy = results.filter((x) => !x.res.ok)
    if (unhealthy.length) {
      throw new ProvisionError(`${unhealthy.length} replica(s) of ${id} not healthy after ${healthTimeoutMs} ms`, {
        code: 'HEALTH_TIMEOUT',
        reason: 'UNHEALTHY',
        retryable: true,
        details: unhealthy.map(({ r, res }) => `replica ${r.index}: GET ${healthPath} on port ${r.port}: ${res.error ?? `HTTP ${res.status}`}`),
        meta: { deploymentId: id },
      })
    }
  }

  async function statusOf(id: string, signal: AbortSignal): Promise<DeploymentStatus> {
    const found = await readManifest(depDir(id))
    const m = found?.operatorId === p.operatorId ? found : undefined
    const { byIndex, strays } = await discover(id, m, signal)
    if (!m) {
      const seen = new Set([...byIndex.values(), ...strays].map((l) => l.pid))
      // processes that dropped the markers still sit in the deployment's cgroups
      for (const g of await (await getCgroups()).populated()) if (g.deploymentId === id) for (const pid of g.pids) seen.add(pid)
      const leaked = [...seen]
      return {
        deploymentId: id,
        exists: leaked.length > 0,
        replicasWanted: 0,
        replicasReady: 0,
        endpoints: [],
        healthy: leaked.length === 0,
        placement,
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
      const probe = await probeHttp({ url: `${endpointOf(port)}${healthPath}`, timeoutMs: 3_000, signal })
      if (probe.ok) endpoints.push(endpointOf(port))
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
      placement,
      ...(problems.length ? { detail: problems.join('; ') } : {}),
    }
  }

  async function ensureArtifact(m: Manifest, signal: AbortSignal): Promise<void> {
    const src = m.request.source
    if (src.kind === 'container') throw new ProvisionError('the local target cannot run container sources', { code: 'SOURCE_KIND_UNSUPPORTED' })
    const a = await fetchArtifact(common, { url: src.url, sha256: src.sha256, cacheDir, timeoutMs: downloadTimeoutMs, maxBytes: p.maxArtifactBytes, allowHosts: p.artifactAllowHosts, signal })
    m.artifact = { sha256: a.sha256, path: a.path }
  }

  const native: Provisioner = {
    id: 'local',
    sourceKinds,

    provision(req, o) {
      return call(`local provision ${req?.deploymentId}`, longCallMs, o, async (signal) => {
        validate(req)
        const id = req.deploymentId
        return locked(id, signal, async () => {
          await mkdir(deploymentsDir, { recursive: true })
          const existing = await readManifest(depDir(id))
          if (existing) ownManifest(existing)
          const now = new Date().toISOString()
          const m: Manifest = existing
            ? { ...existing, request: req, replicas: req.spec.replicas }
            : { version: 1, deploymentId: id, operatorId: p.operatorId, request: req, replicas: req.spec.replicas, replicaRecords: [], createdAt: now, updatedAt: now }
          await writeManifest(depDir(id), m)
          try {
            checkAborted(signal, `local provision ${id}`)
            if (m.replicas > 0) await ensureArtifact(m, signal)
            await converge(m, signal, false)
          } catch (err) {
            // only a record this call created, with no replica ever planned, is safe to forget
            if (!existing && m.replicaRecords.length === 0) await rm(depDir(id), { recursive: true, force: true }).catch(() => undefined)
            throw err
          }
          log.info({ deploymentId: id, replicas: m.replicas }, 'deployment provisioned')
          return statusOf(id, signal)
        })
      })
    },

    status(id, o) {
      return call(`local status ${id}`, shortCallMs, o, async (signal) => {
        validateId(id)
        return statusOf(id, signal)
      })
    },

    scale(id, replicas, o) {
      return call(`local scale ${id}`, longCallMs, o, async (signal) => {
        validateId(id)
        if (!Number.isInteger(replicas) || replicas < 0 || replicas > maxReplicas) throw invalid([`replicas: got ${replicas}, expected an integer 0..${maxReplicas}`])
        return locked(id, signal, async () => {
          const m = await readManifest(depDir(id))
          if (!m) throw notFound(id)
          ownManifest(m)
          m.replicas = replicas
          await writeManifest(depDir(id), m)
          if (replicas > 0) await ensureArtifact(m, signal)
          await converge(m, signal, false)
          log.info({ deploymentId: id, replicas }, 'deployment scaled')
          return statusOf(id, signal)
        })
      })
    },

    restart(id, o) {
      return call(`local restart ${id}`, longCallMs, o, async (signal) => {
        validateId(id)
        return locked(id, signal, async () => {
          const m = await readManifest(depDir(id))
          if (!m) throw notFound(id)
          ownManifest(m)
          if (m.replicas > 0) await ensureArtifact(m, signal)
          await converge(m, signal, true)
          return statusOf(id, signal)
        })
      })
    },

    destroy(id, o) {
      return call(`local destroy ${id}`, 2 * stopGraceMs + 30_000 + shortCallMs, o, async (signal) => {
        validateId(id)
        return locked(id, signal, async () => {
          const found = await readManifest(depDir(id))
          // a directory another operator wrote (a shared rootDir) is not ours to remove; its processes are skipped too
          const m = found?.operatorId === p.operatorId ? found : undefined
          const { byIndex, strays } = await discover(id, m, signal)
          await stopReplicas(m, [...byIndex.values(), ...strays])
          // children that left the replica's group still carry the markers
          const left = await scan(id, signal)
          await stopReplicas(m, left.map((l) => ({ pid: l.pid, startTime: l.startTime, pgrp: l.pgrp })))
          const cg = await getCgroups()
          // whatever left the replicas' process groups and sessions (and dropped the markers) is still in their cgroups
          for (const r of m?.replicaRecords ?? []) await killCgroupMembers(id, r.cgroups)
          // this operator's own cgroup level: also what no manifest names any more
          const survivors = await cg.killDeployment(id)
          if (survivors.length) throw new ProvisionError(`processes ${survivors.join(', ')} of ${id} survived SIGKILL`, { code: 'STOP_FAILED', retryable: true, meta: { deploymentId: id } })
          for (const r of m?.replicaRecords ?? []) {
            await cg.remove(r.cgroups ?? [])
            // cgroups made by an earlier daemon may sit under another base; drop their deployment level too
            for (const f of r.cgroups ?? []) await rmdir(dirname(dirname(f))).catch(() => undefined)
          }
          await cg.removeDeployment(id)
          for (const [port, owner] of reserved) if (owner === id) reserved.delete(port)
          if (!found || m) await rm(depDir(id), { recursive: true, force: true })
          if (m || byIndex.size || strays.length) log.info({ deploymentId: id }, 'deployment destroyed')
        })
      })
    },

    listOwned(o) {
      return call('local listOwned', shortCallMs, o, async (signal) => {
        const out: OwnedResource[] = []
        for (const proc of await scan(undefined, signal)) out.push({ deploymentId: proc.deploymentId, kind: 'process', id: String(proc.pid), placement })
        // processes that cleared their environment are found by the cgroup they cannot leave
        for (const g of await (await getCgroups()).populated()) {
          if (DEPLOYMENT_ID.test(g.deploymentId)) out.push({ deploymentId: g.deploymentId, kind: 'cgroup', id: g.dir, placement })
        }
        for (const name of await readdir(deploymentsDir).catch(() => [] as string[])) {
          checkAborted(signal, 'local listOwned')
          const m = await readManifest(depDir(name)).catch(() => undefined)
          if (m?.operatorId === p.operatorId) out.push({ deploymentId: m.deploymentId, kind: 'deployment-dir', id: depDir(name), placement })
        }
        return out
      })
    },

    async close() {
      closed = true
    },
  }
  // container sources: a dispatch on source kind (withContainers.ts)
  const inner = withContainers(common, native, p, { host, portRange: [portLo, portHi], healthTimeoutMs, stopGraceMs, maxReplicas, longCallMs })
  // one stable port per deployment, balancing over its replicas (provisioners/balancer/withStableEndpoints.ts)
  if (p.stableEndpoints === false) return inner
  return withStableEndpoints(common, inner, { stateDir: join(p.rootDir, 'endpoints', `op-${p.operatorId}`), operatorId: p.operatorId, listenHost: host, urlHost, portRange: [portLo, portHi], usedPorts: () => replicaPorts(deploymentsDir) })
}
