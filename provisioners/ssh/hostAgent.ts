/**
 * Calls into the host agent script: `sh <script> <command> <args...>` over the pool, uploading the script on first
 * use (or after the remote root was wiped). Parses the agent's line-oriented answers.
 */
import { createHash } from 'node:crypto'
import type { Common } from '../../core/common.js'
import type { ExecOptions, ExecResult, SshPool } from './connection.js'
import { HostUnsupportedError, RemoteCommandError } from './errors.js'
import { HOST_LOADER, HOST_SCRIPT, HOST_SCRIPT_SHA256, HOST_SCRIPT_VERSION, LOADER_MISSING, LOADER_MODIFIED } from './hostScript.js'
import type { ReplicaMode, SshHost } from './types.js'

/** Default remote root on a host. */
export const DEFAULT_REMOTE_ROOT = '/var/lib/blueprint-operator'
const ROOT_RE = /^\/(?:[A-Za-z0-9._-]+\/?)*$/

export type HostFacts = {
  uid: number
  systemd: 'system' | 'user' | 'no'
  fetch: 'curl' | 'wget' | 'none'
  sha256sum: boolean
  setsid: boolean
  setpriv: boolean
  runtime: 'podman' | 'docker' | 'none'
  /** False when the runtime would start containers without their CPU/memory/process limits (rootless on cgroup v1). */
  runtimeLimits: boolean
  cgroup: 'v1' | 'v2' | 'none'
}

export type ReplicaState = {
  index: number
  state: 'running' | 'restarting' | 'stopped' | 'dead'
  mode: ReplicaMode
  /** Supervisor pid, unit name or container name; "-" when not running. */
  id: string
  port: number
}

export type RemoteStatus = { present: false } | { present: true; replicas: ReplicaState[]; manifest: unknown }

export type ListedDeployment = { deploymentId: string; owner: string; replicas: ReplicaState[] }

/** Paths of one operator's deployments on one host. */
export type HostLayout = {
  root: string
  script: string
  artifacts: string
  ops: string
  dep(deploymentId: string): string
  /** Unique per (operator, host root): unit, container and cgroup names start with `bpo-<tag>-`. */
  tag: string
}

/** Where things live on `host` for `operatorId`. Throws on a remote root outside the safe path alphabet. */
export function hostLayout(host: SshHost, operatorId: string): HostLayout {
  const root = (host.remoteRoot ?? DEFAULT_REMOTE_ROOT).replace(/\/+$/, '') || '/'
  if (!ROOT_RE.test(root) || root.split('/').includes('..') || root === '/') throw new TypeError(`remoteRoot of ${host.name}: got ${JSON.stringify(host.remoteRoot)}, expected an absolute path of [A-Za-z0-9._-] segments`)
  const ops = `${root}/ops/${operatorId}`
  return {
    root,
    script: `${root}/bin/bpo-host-${HOST_SCRIPT_VERSION}.sh`,
    artifacts: `${root}/artifacts`,
    ops,
    dep: (id) => `${ops}/${id}`,
    tag: createHash('sha256').update(`${operatorId}\0${root}`).digest('hex').slice(0, 10),
  }
}

export type HostAgent = {
  /** Run an agent command; resolves with the raw result (non-zero exit included). */
  run(host: SshHost, args: readonly string[], o?: ExecOptions): Promise<ExecResult>
  /** Run an agent command and throw RemoteCommandError on a non-zero exit. */
  must(host: SshHost, what: string, args: readonly string[], o?: ExecOptions): Promise<string>
  facts(host: SshHost, o?: ExecOptions): Promise<HostFacts>
  status(host: SshHost, deploymentId: string, o?: ExecOptions): Promise<RemoteStatus>
  list(host: SshHost, o?: ExecOptions): Promise<ListedDeployment[]>
  /** Names of this operator's replica cgroups on the host that still hold processes. */
  populatedCgroups(host: SshHost, o?: ExecOptions): Promise<string[]>
  /** TCP ports listening on the host. */
  listeningPorts(host: SshHost, o?: ExecOptions): Promise<Set<number>>
  layout(host: SshHost): HostLayout
  /** Forget cached facts and layout (after a connection error, or when the host goes away). */
  forget(hostName: string): void
}

/** The agent client for one operator. */
export function createHostAgent(common: Common, pool: SshPool, operatorId: string): HostAgent {
  const facts = new Map<string, HostFacts>()
  const layouts = new Map<string, HostLayout>()
  const layout = (host: SshHost) => {
    let l = layouts.get(host.name)
    if (!l) layouts.set(host.name, (l = hostLayout(host, operatorId)))
    return l
  }

  async function run(host: SshHost, args: readonly string[], o: ExecOptions = {}): Promise<ExecResult> {
    const L = layout(host)
    // the loader runs the file only when its bytes hash to what this daemon computed
    const wrapped = ['sh', '-c', HOST_LOADER, L.script, HOST_SCRIPT_SHA256, ...args]
    const r = await pool.exec(host, wrapped, { what: `host agent ${args[0] ?? ''}`, ...o })
    if (r.code !== LOADER_MISSING && r.code !== LOADER_MODIFIED) return r
    if (r.code === LOADER_MODIFIED) {
      const sha = await pool.exec(host, ['sh', '-c', 'command -v sha256sum'], { what: 'looking for sha256sum', ...o })
      if (sha.code !== 0) throw new HostUnsupportedError(host.name, 'sha256sum is missing, the host agent cannot be verified')
      common.logger.warn({ host: host.name, path: L.script }, 'the host agent on disk was modified (by a workload?); refusing to run it and installing it again')
    } else common.logger.info({ host: host.name, version: HOST_SCRIPT_VERSION }, 'installing the host agent')
    const install = await pool.exec(
      host,
      ['sh', '-c', 'mkdir -p "$(dirname "$0")" && cat > "$0.tmp.$$" && chmod 0755 "$0.tmp.$$" && mv -f "$0.tmp.$$" "$0"', L.script],
      { ...o, stdin: HOST_SCRIPT, what: 'installing the host agent' },
    )
    if (install.code !== 0) throw new RemoteCommandError(host.name, 'installing the host agent', install.code, install.stderr)
    return pool.exec(host, wrapped, { what: `host agent ${args[0] ?? ''}`, ...o })
  }

  async function must(host: SshHost, what: string, args: readonly string[], o: ExecOptions = {}): Promise<string> {
    const r = await run(host, args, o)
    if (r.code !== 0) throw new RemoteCommandError(host.name, what, r.code, r.stderr)
    return r.stdout
  }

  return {
    run,
    must,
    layout,
    forget: (name) => {
      facts.delete(name)
      layouts.delete(name)
    },
    async facts(host, o) {
      const cached = facts.get(host.name)
      if (cached) return cached
      const out = await must(host, 'detecting host facts', ['facts'], o)
      const kv = Object.fromEntries(out.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1).trim()]))
      const f: HostFacts = {
        uid: Number(kv.uid ?? -1),
        systemd: kv.systemd === 'system' || kv.systemd === 'user' ? kv.systemd : 'no',
        fetch: kv.fetch === 'curl' || kv.fetch === 'wget' ? kv.fetch : 'none',
        sha256sum: kv.sha256sum === 'yes',
        setsid: kv.setsid === 'yes',
        setpriv: kv.setpriv === 'yes',
        runtime: kv.runtime === 'podman' || kv.runtime === 'docker' ? kv.runtime : 'none',
        runtimeLimits: kv.runtime_limits !== 'no',
        cgroup: kv.cgroup === 'v1' || kv.cgroup === 'v2' ? kv.cgroup : 'none',
      }
      facts.set(host.name, f)
      common.logger.info({ host: host.name, ...f }, 'ssh host facts')
      if (f.systemd === 'no' && f.cgroup === 'none') common.logger.warn({ host: host.name }, 'no systemd and no writable cgroup hierarchy: replicas on this host run without CPU/memory limits')
      return f
    },
    async status(host, deploymentId, o) {
      const out = await must(host, 'reading deployment status', ['status', layout(host).dep(deploymentId)], o)
      const lines = out.split('\n')
      if (lines[0]?.trim() !== 'present') return { present: false }
      const replicas: ReplicaState[] = []
      let manifest: unknown
      for (const line of lines.slice(1)) {
        if (line.startsWith('manifest ')) {
          try {
            manifest = JSON.parse(line.slice('manifest '.length))
          } catch {
            manifest = undefined
          }
        } else {
          const r = parseReplica(line.split(' ').slice(1))
          if (r) replicas.push(r)
        }
      }
      replicas.sort((a, b) => a.index - b.index)
      return { present: true, replicas, manifest }
    },
    async list(host, o) {
      const out = await must(host, 'listing deployments', ['list', layout(host).ops], o)
      const deps = new Map<string, ListedDeployment>()
      for (const line of out.split('\n')) {
        const w = line.split(' ')
        if (w[0] === 'deployment' && w[1]) deps.set(w[1], { deploymentId: w[1], owner: w[2] ?? '', replicas: [] })
        else if (w[0] === 'replica' && w[1]) {
          const r = parseReplica(w.slice(2))
          if (r) deps.get(w[1])?.replicas.push(r)
        }
      }
      return [...deps.values()]
    },
    async populatedCgroups(host, o) {
      const out = await must(host, 'listing cgroups', ['cgroups', `bpo-${layout(host).tag}-`], o)
      return out
        .split('\n')
        .filter((l) => l.startsWith('cgroup '))
        .map((l) => l.slice('cgroup '.length).trim())
    },
    async listeningPorts(host, o) {
      const out = await must(host, 'reading listening ports', ['ports'], o)
      const ports = new Set<number>()
      for (const line of out.split('\n')) {
        const w = line.trim().split(/\s+/)
        // sl local_address rem_address st ...; st 0A is LISTEN
        if (w.length > 3 && w[3] === '0A') {
          const port = parseInt(w[1]!.split(':').pop() ?? '', 16)
          if (Number.isInteger(port)) ports.add(port)
        }
      }
      return ports
    },
  }
}

const MODES: readonly string[] = ['setsid', 'systemd-system', 'systemd-user', 'podman', 'docker']
const STATES: readonly string[] = ['running', 'restarting', 'stopped', 'dead']

/** "<index> <state> <mode> <id> <port>" */
function parseReplica(w: string[]): ReplicaState | undefined {
  const [i, state, mode, id, port] = w
  if (!i || !/^\d+$/.test(i) || !state || !STATES.includes(state) || !mode || !MODES.includes(mode)) return undefined
  return { index: Number(i), state: state as ReplicaState['state'], mode: mode as ReplicaMode, id: id ?? '-', port: Number(port ?? 0) || 0 }
}
