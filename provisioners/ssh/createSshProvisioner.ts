/**
 * The SSH target: runs deployments on the operator's own hosts over SSH. Places each deployment on the cheapest host
 * with free capacity (ledger in the state dir), installs native artifacts verified by sha256 on the host, supervises
 * every replica (systemd unit, pidfile supervisor, or the container runtime) so it outlives the SSH session.
 */
import { randomBytes } from 'node:crypto'
import { lookup } from 'node:dns/promises'
import { isIP } from 'node:net'
import { setMaxListeners } from 'node:events'
import { join } from 'node:path'
import type { Common } from '../../core/common.js'
import { AbortedError } from '../../core/errors.js'
import { withTimeout } from '../../core/retry.js'
import { createAddressPolicy, hostRefused, isNonPublicAddress } from '../artifacts/addressPolicy.js'
import { fetchArtifact } from '../artifacts/fetchArtifact.js'
import { ProvisionError, TargetUnreachableError } from '../errors.js'
import { probeHttp, waitForHealthy } from '../health.js'
import type { CallOptions, DeploymentRequest, DeploymentStatus, OwnedResource, Provisioner, SourceKind } from '../types.js'
import { createSshPool, parsePinnedKey } from './connection.js'
import { HostUnsupportedError, RemoteCommandError } from './errors.js'
import { createHostAgent, type HostFacts, type RemoteStatus, type ReplicaState } from './hostAgent.js'
import { openLedger, reserved, usedByHost } from './ledger.js'
import { chooseHosts, fits } from './placement.js'
import { quoteWord } from './shellQuote.js'
import type { HostCapacity, Placement, ReplicaMode, Resources, SshHost } from './types.js'
import { DEPLOYMENT_ID_RE, ENV_KEY_RE, HOST_NAME_RE, OPERATOR_ID_RE, assertDeploymentId, assertReplicas, assertRequest, requestProblems } from './validate.js'

export type SshProvisionerParameters = {
  /** This operator's ownership marker (BPO_OWNER, container labels, remote directory). */
  operatorId: string
  hosts: SshHost[]
  /** Local directory of the placement/capacity ledger (and the artifact cache by default). */
  stateDir: string
  /** TCP + SSH handshake + auth, in ms. Default 10_000. */
  connectTimeoutMs?: number
  /** One remote command, in ms. Default 120_000. */
  commandTimeoutMs?: number
  /** How long provision/scale wait for new replicas to answer their health path, in ms. Default 60_000. */
  healthTimeoutMs?: number
  /** One health probe, in ms. Default 2_000. */
  probeTimeoutMs?: number
  /** Whole-call default timeouts in ms: provision/scale 900_000, the others 180_000. */
  callTimeoutMs?: { provision?: number; other?: number }
  /**
   * How native artifacts reach a host: "upload" (default) downloads and verifies on the daemon, uploads over SFTP
   * and verifies again on the host; "host-download" lets the host fetch the URL with curl or wget and verify it.
   */
  artifactTransfer?: 'upload' | 'host-download'
  /** Daemon-side artifact cache for "upload". Default `<stateDir>/artifacts`. */
  artifactCacheDir?: string
  /** Replica supervisor: "auto" (systemd where it runs, else the pidfile supervisor), or force one. Default "auto". */
  supervisor?: 'auto' | 'setsid' | 'systemd'
  /** Seconds a stopping replica gets between SIGTERM and SIGKILL. Default 10. */
  stopGraceSeconds?: number
  /** Accept `testing` sources (dev only). Default false. */
  allowTestingSources?: boolean
  /** Non-public artifact hosts (names, addresses, CIDRs) downloads may reach anyway; default none (see addressPolicy). */
  artifactAllowHosts?: readonly string[]
  /** Artifact size cap, bytes (daemon download and host download). Default 512 MiB. */
  maxArtifactBytes?: number
  /**
   * Added to the REPLICA_INDEX a workload sees (only the env: names and data dirs keep the local index). A cloud
   * target runs one replica per VM, each VM its own SSH provisioner, and passes the VM's replica number. Default 0.
   */
  replicaIndexBase?: number
}

export type SshProvisioner = Provisioner & {
  /** Every deployment placed by this operator, from the ledger. */
  placements(): Placement[]
  /** Total, reserved and free capacity per host. */
  capacity(): HostCapacity[]
  /**
   * Hand the provisioner a host at run time (a cloud VM that just booted). A host of the same name is replaced (its
   * cached connection dropped), e.g. when a stopped VM came back with a new address. Throws TypeError when invalid.
   */
  addHost(host: SshHost): void
  /**
   * Take a host away at run time (its VM was stopped or deleted): its connection is dropped and the ledger forgets
   * the deployments placed on it (what they left on the host's disk stays there, to be adopted if it returns).
   */
  removeHost(name: string): Promise<void>
  /** Names of the hosts it knows now. */
  hostNames(): string[]
}

const HOST_ENV_VALUE = '0.0.0.0'
const DEFAULT_PORTS = { from: 20_000, to: 29_999 }
const GiB = 1024 ** 3

/** Create the SSH provisioner. Validates the host list at once; connects lazily. */
export function createSshProvisioner(commonIn: Common, p: SshProvisionerParameters): SshProvisioner {
  const common = commonIn.child('provisioner-ssh')
  const log = common.logger
  if (!OPERATOR_ID_RE.test(p.operatorId)) throw new TypeError(`operatorId: got ${JSON.stringify(p.operatorId)}, expected ${OPERATOR_ID_RE}`)
  const hosts = new Map<string, SshHost>()
  /** Problems of one host's settings (empty when it is usable). */
  const hostProblems = (h: SshHost): string[] => {
    const problems: string[] = []
    if (!HOST_NAME_RE.test(h.name)) problems.push(`name: got ${JSON.stringify(h.name)}`)
    if (!Number.isInteger(h.port) || h.port < 1 || h.port > 65535) problems.push(`port: got ${h.port}`)
    try {
      parsePinnedKey(h.hostKey)
    } catch (err) {
      problems.push(`hostKey: ${(err as Error).message}`)
    }
    if (h.workloadUser !== undefined && !/^[a-z_][a-z0-9_-]{0,31}$/.test(h.workloadUser)) problems.push(`workloadUser: got ${JSON.stringify(h.workloadUser)}, expected a POSIX user name`)
    const r = h.ports ?? DEFAULT_PORTS
    if (!Number.isInteger(r.from) || !Number.isInteger(r.to) || r.from < 1024 || r.to > 65535 || r.from > r.to) problems.push(`ports: got ${r.from}..${r.to}`)
    return problems
  }
  for (const h of p.hosts) {
    const problems = hostProblems(h)
    if (hosts.has(h.name)) problems.push('duplicate name')
    if (problems.length) throw new TypeError(`ssh host ${JSON.stringify(h.name)}: ${problems.join('; ')}`)
    hosts.set(h.name, h)
  }
  const transfer = p.artifactTransfer ?? 'upload'
  const replicaIndexBase = p.replicaIndexBase ?? 0
  const addressPolicy = createAddressPolicy(p.artifactAllowHosts)
  const maxArtifactBytes = p.maxArtifactBytes ?? 512 * 1024 * 1024
  const cacheDir = p.artifactCacheDir ?? join(p.stateDir, 'artifacts')
  const healthTimeoutMs = p.healthTimeoutMs ?? 60_000
  const probeTimeoutMs = p.probeTimeoutMs ?? 2_000
  const grace = String(Math.max(0, Math.round(p.stopGraceSeconds ?? 10)))
  const provisionMs = p.callTimeoutMs?.provision ?? 900_000
  const otherMs = p.callTimeoutMs?.other ?? 180_000
  const pool = createSshPool(common, { connectTimeoutMs: p.connectTimeoutMs, commandTimeoutMs: p.commandTimeoutMs ?? 120_000 })
  const agent = createHostAgent(common, pool, p.operatorId)
  for (const h of hosts.values()) agent.layout(h)
  const ledger = openLedger(p.stateDir)
  const sourceKinds: SourceKind[] = p.allowTestingSources ? ['native', 'container', 'testing'] : ['native', 'container']

  // one operation at a time per deployment; different deployments proceed in parallel
  const locks = new Map<string, Promise<unknown>>()
  function locked<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const prev = locks.get(id) ?? Promise.resolve()
    const run = prev.then(fn, fn)
    const tail = run.catch(() => undefined)
    locks.set(id, tail)
    void tail.then(() => {
      if (locks.get(id) === tail) locks.delete(id)
    })
    return run
  }

  function call<T>(what: string, o: CallOptions | undefined, defMs: number, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    if (o?.signal?.aborted) return Promise.reject(new AbortedError(`ssh ${what}`, o.signal.reason))
    const parent = o?.signal ? AbortSignal.any([o.signal, common.signal]) : common.signal
    return withTimeout(
      `ssh ${what}`,
      o?.timeoutMs ?? defMs,
      (signal) => {
        // one call fans out to many concurrent SSH channels and probes, each listening on this signal
        setMaxListeners(0, signal)
        return fn(signal)
      },
      parent,
    )
  }

  const hostOf = (pl: Placement): SshHost => {
    const h = hosts.get(pl.host)
    if (!h) throw new ProvisionError(`deployment ${pl.deploymentId} is on host ${pl.host}, which is no longer configured`, { code: 'SSH_HOST_UNKNOWN', retryable: false, meta: { host: pl.host } })
    return h
  }
  const endpointOf = (h: SshHost, port: number) => `http://${h.address.includes(':') ? `[${h.address}]` : h.address}:${port}`
  const unitOf = (req: DeploymentRequest): Resources => ({ vcpu: req.spec.vcpu, memoryGiB: req.spec.memoryGiB, storageGiB: req.spec.storageGiB })
  const times = (u: Resources, n: number): Resources => ({ vcpu: u.vcpu * n, memoryGiB: u.memoryGiB * n, storageGiB: u.storageGiB * n })
  const nameOf = (h: SshHost, id: string, i: number) => `${cgroupPrefixOf(h, id)}${i}`
  /** Unit, container and cgroup names of a deployment's replicas: this prefix and the replica index. */
  const cgroupPrefixOf = (h: SshHost, id: string) => `bpo-${agent.layout(h).tag}-${id}-r`

  /** The placement recorded in a host's manifest (written by this target), or undefined when it is not one. */
  function fromManifest(h: SshHost, m: unknown, replicas: ReplicaState[]): Placement | undefined {
    const x = m as Partial<Placement> & { owner?: string }
    if (!x || typeof x !== 'object' || x.owner !== p.operatorId || typeof x.deploymentId !== 'string' || !x.request || !x.unit) return undefined
    // what comes back from a host is checked like a new request before anything is built from it
    if (requestProblems(x.request).length || x.request.deploymentId !== x.deploymentId) {
      log.warn({ host: h.name, deploymentId: x.deploymentId }, 'ignoring a malformed manifest on the host')
      return undefined
    }
    // the manifest sits in a directory the workload can write: everything that reserves capacity or ports is
    // checked against the request and the host's configuration before it reaches the ledger
    const problems: string[] = []
    const unit = unitOf(x.request)
    const u = x.unit as Partial<Resources>
    if (u.vcpu !== unit.vcpu || u.memoryGiB !== unit.memoryGiB || u.storageGiB !== unit.storageGiB) problems.push(`unit: got ${JSON.stringify(x.unit)}, expected the request's ${JSON.stringify(unit)}`)
    const kind = x.request.source.kind === 'container' ? 'container' : 'native'
    if (x.kind !== undefined && x.kind !== kind) problems.push(`kind: got ${JSON.stringify(x.kind)}, expected ${kind}`)
    const count = (v: unknown) => (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 1000 ? v : undefined)
    const n = count(x.replicas ?? 0)
    const data = count(x.dataReplicas ?? x.replicas ?? 0)
    if (n === undefined) problems.push(`replicas: got ${JSON.stringify(x.replicas)}, expected an integer 0..1000`)
    if (data === undefined || (n !== undefined && data < n)) problems.push(`dataReplicas: got ${JSON.stringify(x.dataReplicas)}, expected an integer >= replicas, <= 1000`)
    const range = h.ports ?? DEFAULT_PORTS
    const inRange = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= range.from && v <= range.to
    // ports the host's replica dirs record win over an older manifest
    const ports: Record<string, number> = {}
    const raw: unknown = x.ports ?? {}
    if (!raw || typeof raw !== 'object' || Array.isArray(raw)) problems.push('ports: expected an object')
    else
      for (const [k, v] of Object.entries(raw)) {
        if (!/^\d{1,4}$/.test(k) || Number(k) >= 1000 || !inRange(v)) problems.push(`ports.${k}: got ${JSON.stringify(v)}, expected a replica index and a port in ${range.from}..${range.to}`)
        else ports[String(Number(k))] = v
      }
    for (const r of replicas) {
      if (r.port <= 0) continue
      if (inRange(r.port)) ports[String(r.index)] = r.port
      else problems.push(`replica ${r.index}: port ${r.port} outside ${range.from}..${range.to}`)
    }
    if (new Set(Object.values(ports)).size !== Object.values(ports).length) problems.push('ports: one port given to two replicas')
    if (problems.length || n === undefined || data === undefined) {
      log.warn({ host: h.name, deploymentId: x.deploymentId, problems }, 'ignoring a manifest on the host that does not match its request or the host')
      return undefined
    }
    return {
      deploymentId: x.deploymentId,
      host: h.name,
      kind,
      request: x.request,
      unit,
      replicas: n,
      dataReplicas: data,
      ports,
      createdAt: typeof x.createdAt === 'string' && !Number.isNaN(Date.parse(x.createdAt)) ? x.createdAt : new Date().toISOString(),
    }
  }

  /**
   * Find the deployment: the ledger first, else every host (a daemon that lost its state dir). Throws
   * TargetUnreachableError when some host could not be asked and none had it.
   */
  async function locate(id: string, signal: AbortSignal, pinned?: string): Promise<{ host: SshHost; placement: Placement; remote: RemoteStatus } | undefined> {
    const known = ledger.get(id)
    if (known) {
      const h = hostOf(known)
      return { host: h, placement: known, remote: await agent.status(h, id, { signal }) }
    }
    let unreachable: unknown
    // a request pinned to a known host is looked for there only (a cloud VM holds exactly its own deployment)
    const where = pinned !== undefined && hosts.has(pinned) ? [hosts.get(pinned)!] : [...hosts.values()]
    const found = await Promise.all(
      where.map(async (h) => {
        try {
          const remote = await agent.status(h, id, { signal })
          if (!remote.present) return undefined
          const placement = fromManifest(h, remote.manifest, remote.replicas)
          return placement ? { host: h, placement, remote } : undefined
        } catch (err) {
          if (!(err instanceof TargetUnreachableError)) throw err
          unreachable = err
          return undefined
        }
      }),
    )
    const hit = found.find((x) => x !== undefined)
    if (hit) return hit
    if (unreachable) throw unreachable
    return undefined
  }

  async function writeManifest(h: SshHost, pl: Placement, signal: AbortSignal) {
    const body = JSON.stringify({ version: 1, owner: p.operatorId, ...pl, updatedAt: new Date().toISOString() })
    await agent.must(h, 'writing the deployment manifest', ['manifest', agent.layout(h).dep(pl.deploymentId), p.operatorId], { signal, stdin: body })
  }

  function modeFor(h: SshHost, kind: Placement['kind'], f: HostFacts): ReplicaMode {
    if (kind === 'container') {
      if (f.runtime === 'none') throw new HostUnsupportedError(h.name, 'no container runtime (podman or docker)')
      return f.runtime
    }
    if (!f.sha256sum) throw new HostUnsupportedError(h.name, 'sha256sum is missing, artifacts cannot be verified on the host')
    const want = p.supervisor ?? 'auto'
    if (want !== 'setsid' && f.systemd !== 'no') return f.systemd === 'system' ? 'systemd-system' : 'systemd-user'
    if (want === 'systemd') throw new HostUnsupportedError(h.name, 'systemd is not running')
    if (!f.setsid) throw new HostUnsupportedError(h.name, 'setsid is missing')
    return 'setsid'
  }

  /** Extra `start` arguments of a native replica: the workload user, checked against what the host can do. */
  function nativeUserArgs(h: SshHost, f: HostFacts): string[] {
    if (!h.workloadUser) return []
    if (f.uid !== 0) throw new HostUnsupportedError(h.name, `workload user ${h.workloadUser} needs the SSH login to be root`)
    if (!f.setpriv) throw new HostUnsupportedError(h.name, `workload user ${h.workloadUser} needs setpriv (util-linux)`)
    return [h.workloadUser]
  }

  /**
   * What can be checked of a URL the host itself downloads: a literal non-public address, and (best effort: the
   * host's resolver may answer otherwise) what the name resolves to here. Redirects curl follows on the host are not
   * checked; "upload" transfer checks every hop and every resolved address.
   */
  async function checkHostDownload(url: URL): Promise<void> {
    addressPolicy.checkUrl(url)
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1')
    if (isIP(host) || addressPolicy.allows(host)) return
    const found = await lookup(host, { all: true }).catch(() => [])
    const bad = found.find((a) => isNonPublicAddress(a.address) && !addressPolicy.allows(a.address))
    if (bad) throw hostRefused(host, `it resolves to ${bad.address}, a loopback, private, link-local or reserved address`)
  }

  /** Put the verified artifact at `<root>/artifacts/<sha256>` on the host; returns its remote path. */
  async function installArtifact(h: SshHost, req: DeploymentRequest, f: HostFacts, signal: AbortSignal): Promise<string> {
    const src = req.source
    if (src.kind === 'container') throw new TypeError('not a native source')
    const L = agent.layout(h)
    const remote = `${L.artifacts}/${src.sha256}`
    const check = await agent.run(h, ['artifact', L.root, src.sha256, 'check', '-'], { signal })
    if (check.code === 0) return remote
    let r
    if (transfer === 'host-download' && f.fetch !== 'none') {
      await checkHostDownload(new URL(src.url))
      r = await agent.run(h, ['artifact', L.root, src.sha256, 'download', src.url, String(maxArtifactBytes)], { signal, timeoutMs: 15 * 60_000 })
    } else {
      const local = await fetchArtifact(common, { url: src.url, sha256: src.sha256, cacheDir, allowHosts: p.artifactAllowHosts, maxBytes: maxArtifactBytes, signal })
      const tmp = `${L.artifacts}/.upload.${src.sha256}.${randomBytes(6).toString('hex')}`
      // the "check" call above created the artifacts dir
      await pool.upload(h, local.path, tmp, 0o600, { signal, timeoutMs: 15 * 60_000 }).catch(async (err: unknown) => {
        await pool.exec(h, ['rm', '-f', tmp], { timeoutMs: 10_000 }).catch(() => undefined)
        throw err
      })
      r = await agent.run(h, ['artifact', L.root, src.sha256, 'upload', tmp], { signal })
    }
    if (r.code === 0) return remote
    if (r.code === 20) throw new ProvisionError(`artifact sha256 mismatch on ${h.name}`, { reason: 'ARTIFACT_DIGEST_MISMATCH', code: 'ARTIFACT_DIGEST_MISMATCH', retryable: false, details: [r.stderr.trim().slice(0, 200)] })
    if (r.code === 21) throw new ProvisionError(`${h.name} could not download the artifact`, { reason: 'ARTIFACT_UNREACHABLE', code: 'ARTIFACT_UNREACHABLE', retryable: true })
    if (r.code === 25) throw new ProvisionError(`the artifact is above the ${maxArtifactBytes} byte cap`, { reason: 'ARTIFACT_UNREACHABLE', code: 'ARTIFACT_TOO_LARGE', retryable: false })
    throw new RemoteCommandError(h.name, 'installing the artifact', r.code, r.stderr)
  }

  function envFile(pl: Placement, i: number, port: number, dataDir: string): string {
    const req = pl.request
    const env: [string, string][] = [
      ...Object.entries(req.env ?? {}),
      ['PORT', String(port)],
      ['HOST', HOST_ENV_VALUE],
      ['SERVICE_ID', req.serviceId],
      ['BLUEPRINT_ID', req.blueprintId],
      ['DEPLOYMENT_ID', req.deploymentId],
      ['REPLICA_INDEX', String(i + replicaIndexBase)],
      ['DATA_DIR', dataDir],
      ['BPO_OWNER', p.operatorId],
      ['BPO_DEPLOYMENT', req.deploymentId],
    ]
    for (const [k] of env) if (!ENV_KEY_RE.test(k)) throw new TypeError(`env key ${JSON.stringify(k)}`)
    return env.map(([k, v]) => `export ${k}=${quoteWord(v)}\n`).join('')
  }

  /** Container `run` arguments after `--name`: labels, limits, port, data volume, env, image by digest. */
  function containerArgs(h: SshHost, pl: Placement, i: number, hostPort: number): string[] {
    const req = pl.request
    if (req.source.kind !== 'container') throw new TypeError('not a container source')
    const L = agent.layout(h)
    const containerPort = req.spec.ports[0] ?? 8080
    const args = [
      '--label', `io.blueprint-operator.owner=${p.operatorId}`,
      '--label', `io.blueprint-operator.deployment=${req.deploymentId}`,
      '--label', `io.blueprint-operator.replica=${i}`,
      '--label', `io.blueprint-operator.tag=${L.tag}`,
      '--restart', 'always',
      '-p', `${hostPort}:${containerPort}`,
      '-v', `${L.dep(req.deploymentId)}/data/${i}:/data`,
    ]
    if (pl.unit.memoryGiB > 0) args.push('--memory', String(Math.floor(pl.unit.memoryGiB * GiB)))
    if (pl.unit.vcpu > 0) args.push('--cpus', String(pl.unit.vcpu))
    const env: [string, string][] = [
      ...Object.entries(req.env ?? {}),
      ['PORT', String(containerPort)],
      ['HOST', HOST_ENV_VALUE],
      ['SERVICE_ID', req.serviceId],
      ['BLUEPRINT_ID', req.blueprintId],
      ['DEPLOYMENT_ID', req.deploymentId],
      ['REPLICA_INDEX', String(i + replicaIndexBase)],
      ['DATA_DIR', '/data'],
      ['BPO_OWNER', p.operatorId],
      ['BPO_DEPLOYMENT', req.deploymentId],
    ]
    for (const [k, v] of env) args.push('-e', `${k}=${v}`)
    args.push(`${req.source.image}@${req.source.digest}`)
    return args
  }

  /** Host ports for replicas 0..n-1 that have none yet, recorded in the ledger before anything listens. */
  async function allocatePorts(h: SshHost, id: string, n: number, signal: AbortSignal): Promise<Placement> {
    const cur = ledger.get(id)!
    const missing = Array.from({ length: n }, (_, i) => i).filter((i) => cur.ports[String(i)] === undefined)
    if (!missing.length) return cur
    const listening = await agent.listeningPorts(h, { signal })
    return ledger.update((draft) => {
      const pl = draft.placements[id]!
      const taken = new Set<number>(listening)
      for (const other of Object.values(draft.placements)) if (other.host === h.name) for (const port of Object.values(other.ports)) taken.add(port)
      const range = h.ports ?? DEFAULT_PORTS
      let next = range.from
      for (const i of missing) {
        while (next <= range.to && taken.has(next)) next++
        if (next > range.to) throw new ProvisionError(`no free port left on ${h.name} in ${range.from}..${range.to}`, { reason: 'NO_FEASIBLE_OFFER', code: 'NO_FEASIBLE_OFFER', retryable: false })
        pl.ports[String(i)] = next
        taken.add(next)
      }
      return pl
    })
  }

  /** Start replicas 0..n-1 that do not run (a running one is left alone) and stop the rest, keeping their data. */
  async function converge(h: SshHost, id: string, n: number, signal: AbortSignal): Promise<void> {
    const remote = await agent.status(h, id, { signal })
    const existing = remote.present ? remote.replicas : []
    const running = new Set(existing.filter((r) => r.state === 'running' || r.state === 'restarting').map((r) => r.index))
    const toStart = Array.from({ length: n }, (_, i) => i).filter((i) => !running.has(i))
    const recorded = ledger.get(id)!.ports
    if (toStart.some((i) => recorded[String(i)] !== undefined)) {
      // a stopped replica's port may have been taken by someone else meanwhile: give it a new one
      const listening = await agent.listeningPorts(h, { signal })
      const stale = toStart.filter((i) => listening.has(recorded[String(i)] ?? -1))
      if (stale.length) await ledger.update((d) => stale.forEach((i) => delete d.placements[id]!.ports[String(i)]))
    }
    const pl = await allocatePorts(h, id, n, signal)
    const f = await agent.facts(h, { signal })
    const mode = modeFor(h, pl.kind, f)
    const L = agent.layout(h)
    const depDir = L.dep(id)
    let bin = '-'
    if (pl.kind === 'native' && toStart.length) bin = await installArtifact(h, pl.request, f, signal)
    else if (pl.kind === 'container' && toStart.length && pl.request.source.kind === 'container') {
      const ref = `${pl.request.source.image}@${pl.request.source.digest}`
      const r = await pool.exec(h, [mode, 'pull', ref], { signal, timeoutMs: 15 * 60_000 })
      if (r.code !== 0) throw new ProvisionError(`${h.name} could not pull ${ref}`, { reason: 'ARTIFACT_UNREACHABLE', code: 'ARTIFACT_UNREACHABLE', retryable: true, details: r.stderr.trim().split('\n').slice(-3) })
    }
    await Promise.all(
      toStart.map(async (i) => {
        const port = pl.ports[String(i)]!
        const name = nameOf(h, id, i)
        const dataDir = `${depDir}/data/${i}`
        const mem = pl.unit.memoryGiB > 0 ? Math.floor(pl.unit.memoryGiB * GiB) : 0
        const cpu = pl.unit.vcpu > 0 ? Math.max(1000, Math.round(pl.unit.vcpu * 100_000)) : 0
        const extra = pl.kind === 'container' ? containerArgs(h, pl, i, port) : nativeUserArgs(h, f)
        await agent.must(h, `starting replica ${i}`, ['start', depDir, String(i), mode, name, bin, name, String(mem), String(cpu), String(port), ...extra], {
          signal,
          stdin: envFile(pl, i, port, dataDir),
        })
      }),
    )
    await Promise.all(
      existing
        .filter((r) => r.index >= n && r.state !== 'stopped')
        .map((r) => agent.must(h, `stopping replica ${r.index}`, ['stop', depDir, String(r.index), grace, nameOf(h, id, r.index)], { signal })),
    )
  }

  async function waitReady(h: SshHost, pl: Placement, signal: AbortSignal): Promise<void> {
    const path = pl.request.healthPath ?? '/'
    await Promise.all(
      Array.from({ length: pl.replicas }, (_, i) => pl.ports[String(i)]).map((port) =>
        port === undefined ? undefined : waitForHealthy({ url: `${endpointOf(h, port)}${path}`, deadlineMs: healthTimeoutMs, timeoutMs: probeTimeoutMs, signal }),
      ),
    )
  }

  async function statusFrom(h: SshHost, pl: Placement, remote: RemoteStatus, signal: AbortSignal): Promise<DeploymentStatus> {
    if (!remote.present) return absent(pl.deploymentId, `manifest missing on ${h.name}`)
    const path = pl.request.healthPath ?? '/'
    const wanted = pl.replicas
    const live = remote.replicas.filter((r) => r.index < wanted && (r.state === 'running' || r.state === 'restarting') && r.port > 0)
    const probes = await Promise.all(live.map(async (r) => ({ r, ok: (await probeHttp({ url: `${endpointOf(h, r.port)}${path}`, timeoutMs: probeTimeoutMs, signal })).ok })))
    const ready = probes.filter((x) => x.ok).map((x) => x.r)
    const notes = remote.replicas.filter((r) => r.index < wanted && !ready.includes(r)).map((r) => `replica ${r.index}: ${r.state}`)
    return {
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

  const absent = (deploymentId: string, detail?: string): DeploymentStatus => ({
    deploymentId,
    exists: false,
    replicasWanted: 0,
    replicasReady: 0,
    endpoints: [],
    healthy: false,
    ...(detail ? { detail } : {}),
  })

  /** Record a placement found on a host (after a lost state dir) in the ledger. */
  async function adopt(pl: Placement): Promise<Placement> {
    if (ledger.get(pl.deploymentId)) return ledger.get(pl.deploymentId)!
    log.info({ deploymentId: pl.deploymentId, host: pl.host }, 'adopting a deployment found on its host')
    return ledger.update((d) => (d.placements[pl.deploymentId] = pl))
  }

  /**
   * Choose a host for a new deployment and reserve its replicas in one ledger update, so two concurrent placements
   * never both count on the same free capacity. Throws NO_FEASIBLE_OFFER when no host fits.
   */
  async function placeAndReserve(req: DeploymentRequest, kind: Placement['kind'], signal: AbortSignal): Promise<Placement> {
    const unit = unitOf(req)
    const n = req.spec.replicas
    const need = times(unit, Math.max(1, n))
    const problems: string[] = []
    if (req.spec.gpu.count > 0) problems.push(`gpu: ${req.spec.gpu.count} requested; SSH hosts offer no GPUs`)
    const chooseNow = (candidates: SshHost[], used: Map<string, Resources>) => chooseHosts({ hosts: candidates, used, need, regions: req.spec.regions, pinned: req.placement })
    const eligible: SshHost[] = []
    let unreachable: unknown
    const first = problems.length ? undefined : chooseNow([...hosts.values()], usedByHost(ledger.all()))
    if (first && !first.ok) problems.push(...first.problems)
    for (const h of first?.ok ? first.hosts : []) {
      if (kind === 'native') {
        eligible.push(h)
        continue
      }
      try {
        const f = await agent.facts(h, { signal })
        if (f.runtime !== 'none') eligible.push(h)
        else problems.push(`${h.name}: no container runtime`)
      } catch (err) {
        if (!(err instanceof TargetUnreachableError)) throw err
        unreachable = err
        problems.push(`${h.name}: unreachable`)
      }
    }
    if (!eligible.length && unreachable) throw unreachable
    if (signal.aborted) throw new AbortedError('ssh provision', signal.reason)
    const noOffer = (details: string[]) => new ProvisionError(`no SSH host can hold ${req.deploymentId}`, { reason: 'NO_FEASIBLE_OFFER', code: 'NO_FEASIBLE_OFFER', retryable: false, details })
    if (!eligible.length) throw noOffer(problems)
    // intent first: the reservation is on disk before anything exists on the host
    return ledger.update((d) => {
      // capacity may have gone to a concurrent placement since the first look: decide again under the lock
      const chosen = chooseNow(eligible, usedByHost(Object.values(d.placements)))
      if (!chosen.ok) throw noOffer(chosen.problems)
      const h = chosen.hosts[0]!
      const pl: Placement = { deploymentId: req.deploymentId, host: h.name, kind, request: req, unit, replicas: n, dataReplicas: n, ports: {}, createdAt: new Date().toISOString() }
      d.placements[req.deploymentId] = pl
      return pl
    })
  }

  /** Reserve `n` replicas of `pl` on its host, or throw NO_FEASIBLE_OFFER. */
  async function reserve(id: string, n: number): Promise<Placement> {
    return ledger.update((d) => {
      const pl = d.placements[id]!
      const h = hostOf(pl)
      const used = usedByHost(Object.values(d.placements), id).get(h.name)
      const want = { ...pl, replicas: n, dataReplicas: Math.max(pl.dataReplicas, n) }
      if (n > pl.replicas && !fits(h, used, reserved(want))) {
        throw new ProvisionError(`${h.name} cannot hold ${n} replicas of ${id}`, { reason: 'NO_FEASIBLE_OFFER', code: 'NO_FEASIBLE_OFFER', retryable: false, meta: { host: h.name } })
      }
      d.placements[id] = want
      return want
    })
  }

  async function scaleTo(h: SshHost, id: string, n: number, signal: AbortSignal): Promise<DeploymentStatus> {
    const growing = n >= ledger.get(id)!.replicas
    // growing reserves before starting; shrinking releases capacity only once the replicas are stopped
    let pl = growing ? await reserve(id, n) : ledger.get(id)!
    if (growing) {
      pl = await allocatePorts(h, id, n, signal)
      await writeManifest(h, pl, signal)
    }
    const written = JSON.stringify(pl.ports)
    await converge(h, id, n, signal)
    if (!growing) pl = await reserve(id, n)
    else pl = ledger.get(id)!
    // converge may have moved a replica to a new port
    if (!growing || JSON.stringify(pl.ports) !== written) await writeManifest(h, pl, signal)
    await waitReady(h, pl, signal)
    return statusFrom(h, pl, await agent.status(h, id, { signal }), signal)
  }

  const provisioner: SshProvisioner = {
    id: 'ssh',
    sourceKinds,

    provision(req, o) {
      return call('provision', o, provisionMs, (signal) =>
        locked(req.deploymentId ?? '', async () => {
          assertRequest(req)
          if (!sourceKinds.includes(req.source.kind)) throw new ProvisionError(`source kind ${req.source.kind} is not accepted by this operator`, { reason: 'MALFORMED_REQUEST', code: 'SOURCE_KIND_REFUSED' })
          const kind: Placement['kind'] = req.source.kind === 'container' ? 'container' : 'native'
          const id = req.deploymentId
          let found = await locate(id, signal, req.placement)
          if (found && !ledger.get(id)) await adopt(found.placement)
          if (!found) {
            const pl = await placeAndReserve(req, kind, signal)
            log.info({ deploymentId: id, host: pl.host, kind }, 'placing deployment')
            found = { host: hostOf(pl), placement: pl, remote: { present: false } }
          } else if (!found.remote.present) {
            // recorded here but gone from its host (an interrupted first attempt): start over on the same host
            const pl: Placement = { ...found.placement, request: req, kind, unit: unitOf(req), replicas: 0, dataReplicas: 0 }
            await ledger.update((d) => (d.placements[id] = pl))
            found = { ...found, placement: pl }
          }
          return scaleTo(found.host, id, req.spec.replicas, signal)
        }),
      )
    },

    status(deploymentId, o) {
      return call('status', o, otherMs, async (signal) => {
        assertDeploymentId(deploymentId)
        const found = await locate(deploymentId, signal)
        if (!found) return absent(deploymentId)
        return statusFrom(found.host, found.placement, found.remote, signal)
      })
    },

    scale(deploymentId, replicas, o) {
      return call('scale', o, provisionMs, (signal) =>
        locked(deploymentId, async () => {
          assertDeploymentId(deploymentId)
          assertReplicas(replicas)
          const found = await locate(deploymentId, signal)
          if (!found || !found.remote.present) throw new ProvisionError(`deployment ${deploymentId} does not exist on any SSH host`, { code: 'DEPLOYMENT_NOT_FOUND', retryable: false })
          if (!ledger.get(deploymentId)) await adopt(found.placement)
          return scaleTo(found.host, deploymentId, replicas, signal)
        }),
      )
    },

    restart(deploymentId, o) {
      return call('restart', o, provisionMs, (signal) =>
        locked(deploymentId, async () => {
          assertDeploymentId(deploymentId)
          const found = await locate(deploymentId, signal)
          if (!found || !found.remote.present) throw new ProvisionError(`deployment ${deploymentId} does not exist on any SSH host`, { code: 'DEPLOYMENT_NOT_FOUND', retryable: false })
          const { host: h, placement: pl } = found
          const st = await statusFrom(h, pl, found.remote, signal)
          const depDir = agent.layout(h).dep(deploymentId)
          const readyPorts = new Set(st.endpoints)
          const bad = Array.from({ length: pl.replicas }, (_, i) => i).filter((i) => {
            const port = pl.ports[String(i)]
            return port === undefined || !readyPorts.has(endpointOf(h, port))
          })
          for (const i of bad) {
            log.warn({ deploymentId, host: h.name, replica: i }, 'restarting an unhealthy replica')
            await agent.must(h, `stopping replica ${i}`, ['stop', depDir, String(i), grace, nameOf(h, deploymentId, i)], { signal })
          }
          if (bad.length) {
            await converge(h, deploymentId, pl.replicas, signal)
            await waitReady(h, pl, signal)
          }
          return statusFrom(h, pl, await agent.status(h, deploymentId, { signal }), signal)
        }),
      )
    },

    destroy(deploymentId, o) {
      return call('destroy', o, otherMs, (signal) =>
        locked(deploymentId, async () => {
          assertDeploymentId(deploymentId)
          const known = ledger.get(deploymentId)
          const targets = known ? [hostOf(known)] : [...hosts.values()]
          let unreachable: unknown
          await Promise.all(
            targets.map(async (h) => {
              try {
                await agent.must(h, 'destroying the deployment', ['destroy', agent.layout(h).dep(deploymentId), grace, cgroupPrefixOf(h, deploymentId)], { signal })
                const f = await agent.facts(h, { signal })
                if (f.runtime !== 'none') await removeContainers(h, f.runtime, deploymentId, signal)
              } catch (err) {
                if (!(err instanceof TargetUnreachableError) || known) throw err
                unreachable = err
              }
            }),
          )
          if (unreachable) throw unreachable
          if (known) await ledger.update((d) => void delete d.placements[deploymentId])
          log.info({ deploymentId }, 'destroyed')
        }),
      )
    },

    listOwned(o) {
      return call('listOwned', o, otherMs, async (signal) => {
        const out: OwnedResource[] = []
        let reached = 0
        let lastErr: unknown
        await Promise.all(
          [...hosts.values()].map(async (h) => {
            try {
              const deps = await agent.list(h, { signal })
              const f = await agent.facts(h, { signal })
              const groups = await agent.populatedCgroups(h, { signal })
              reached++
              const seen = new Set<string>()
              for (const d of deps) {
                if (d.owner !== p.operatorId) continue
                out.push({ deploymentId: d.deploymentId, kind: 'deployment-dir', id: `${h.name}:${agent.layout(h).dep(d.deploymentId)}`, placement: h.name })
                for (const r of d.replicas) {
                  if (r.state !== 'running' && r.state !== 'restarting') continue
                  const kind = r.mode === 'setsid' ? 'process' : r.mode.startsWith('systemd') ? 'unit' : 'container'
                  seen.add(r.id)
                  out.push({ deploymentId: d.deploymentId, kind, id: kind === 'process' ? `${h.name}:${r.id}` : r.id, placement: h.name })
                }
              }
              // processes that left their supervisor (and whose deployment dir may be gone) still sit in its cgroup
              const prefix = `bpo-${agent.layout(h).tag}-`
              for (const name of groups) {
                const id = name.startsWith(prefix) ? name.slice(prefix.length).replace(/-r\d+$/, '') : ''
                if (DEPLOYMENT_ID_RE.test(id) && name === nameOf(h, id, Number(name.slice(name.lastIndexOf('-r') + 2)))) {
                  out.push({ deploymentId: id, kind: 'cgroup', id: `${h.name}:${name}`, placement: h.name })
                }
              }
              if (f.runtime !== 'none') {
                for (const c of await ownedContainers(h, f.runtime, undefined, signal)) {
                  if (!seen.has(c.name)) out.push({ deploymentId: c.deploymentId, kind: 'container', id: c.name, placement: h.name })
                }
              }
            } catch (err) {
              if (!(err instanceof TargetUnreachableError)) throw err
              lastErr = err
              log.warn({ host: h.name }, 'listOwned: host unreachable, its resources are not listed')
            }
          }),
        )
        if (!reached && lastErr) throw lastErr
        return out.sort((a, b) => (a.deploymentId + a.kind + a.id < b.deploymentId + b.kind + b.id ? -1 : 1))
      })
    },

    async close() {
      await pool.close()
    },

    placements: () => ledger.all().map((x) => structuredClone(x)),

    addHost(h) {
      const problems = hostProblems(h)
      if (problems.length) throw new TypeError(`ssh host ${JSON.stringify(h.name)}: ${problems.join('; ')}`)
      const old = hosts.get(h.name)
      if (old && JSON.stringify(old) === JSON.stringify(h)) return
      if (old) pool.drop(h.name)
      hosts.set(h.name, h)
      agent.forget(h.name)
      agent.layout(h)
    },

    async removeHost(name) {
      if (!hosts.has(name)) return
      hosts.delete(name)
      pool.drop(name)
      agent.forget(name)
      if (ledger.all().some((pl) => pl.host === name)) {
        await ledger.update((d) => {
          for (const [id, pl] of Object.entries(d.placements)) if (pl.host === name) delete d.placements[id]
        })
      }
    },

    hostNames: () => [...hosts.keys()],

    capacity() {
      const used = usedByHost(ledger.all())
      return [...hosts.values()].map((h) => {
        const u = used.get(h.name) ?? { vcpu: 0, memoryGiB: 0, storageGiB: 0 }
        return {
          host: h.name,
          hourlyUsd: h.hourlyUsd,
          region: h.region,
          total: { ...h.capacity },
          used: u,
          free: { vcpu: h.capacity.vcpu - u.vcpu, memoryGiB: h.capacity.memoryGiB - u.memoryGiB, storageGiB: h.capacity.storageGiB - u.storageGiB },
        }
      })
    },
  }

  /** Containers on `h` labelled with this operator (and this host root), optionally of one deployment. */
  async function ownedContainers(h: SshHost, runtime: 'podman' | 'docker', deploymentId: string | undefined, signal: AbortSignal) {
    const L = agent.layout(h)
    const argv = [runtime, 'ps', '-a', '--filter', `label=io.blueprint-operator.owner=${p.operatorId}`, '--filter', `label=io.blueprint-operator.tag=${L.tag}`]
    if (deploymentId) argv.push('--filter', `label=io.blueprint-operator.deployment=${deploymentId}`)
    argv.push('--format', '{{.Names}}')
    const r = await pool.exec(h, argv, { signal })
    if (r.code !== 0) throw new RemoteCommandError(h.name, 'listing containers', r.code, r.stderr)
    const prefix = `bpo-${L.tag}-`
    return r.stdout
      .split('\n')
      .map((n) => n.trim())
      .filter((n) => n.startsWith(prefix))
      .map((name) => ({ name, deploymentId: name.slice(prefix.length).replace(/-r\d+$/, '') }))
  }

  async function removeContainers(h: SshHost, runtime: 'podman' | 'docker', deploymentId: string, signal: AbortSignal) {
    const names = (await ownedContainers(h, runtime, deploymentId, signal)).map((c) => c.name)
    if (!names.length) return
    const r = await pool.exec(h, [runtime, 'rm', '-f', ...names], { signal })
    if (r.code !== 0) throw new RemoteCommandError(h.name, 'removing containers', r.code, r.stderr)
  }

  return provisioner
}
