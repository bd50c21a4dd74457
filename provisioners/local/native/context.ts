/**
 * The explicit context every step of the local process runner works over (STYLE.md 11): the checked parameters with
 * their defaults, the paths, the metrics, and the little state one provisioner keeps in memory (a lock per
 * deployment, the ports it handed out, the uid lock, closed). Built once by `createLocalContext`; the steps live one
 * per file beside it and `createLocalProvisioner` composes them.
 */
import { hostname } from 'node:os'
import { join } from 'node:path'
import type { Common } from '../../../core/common.js'
import { withTimeout } from '../../../core/retry.js'
import { localAccountsInRange, uidRangeProblems, type UidRange } from '../../../core/workloadUids.js'
import { allowListProblems } from '../../artifacts/addressPolicy.js'
import { ProvisionError } from '../../errors.js'
import type { CallOptions, SourceKind } from '../../types.js'
import { detectCgroups, type Cgroups } from '../cgroups.js'
import type { LocalProvisionerParameters } from '../createLocalProvisioner.js'
import type { Manifest } from '../manifest.js'
import { checkAborted, configInvalid } from './errors.js'
import { findSetpriv, resolveWorkloadUser, type WorkloadUser } from './workloadUser.js'

/** Ownership marker in every replica's environment: the operator id. */
export const OWNER = 'BPO_OWNER'
/** Deployment marker in every replica's environment: the deployment id. */
export const DEPLOYMENT = 'BPO_DEPLOYMENT'
export const DEPLOYMENT_ID = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/

/** A running replica process: its identity (pid and start time), process group and port when known. */
export type Live = { pid: number; startTime: string; pgrp: number; port?: number }

export type LocalMetrics = ReturnType<typeof createLocalMetrics>

export type LocalContext = {
  common: Common
  log: Common['logger']
  rootDir: string
  operatorId: string
  /** Address replicas listen on (HOST). */
  host: string
  /** The address endpoints are reached at (a wildcard host becomes loopback). */
  urlHost: string
  /** Ports handed out as PORT, inclusive. */
  portRange: [number, number]
  healthTimeoutMs: number
  downloadTimeoutMs: number
  stopGraceMs: number
  pidsMax: number
  maxReplicas: number
  maxLogBytes: number
  maxArtifactBytes?: number
  artifactAllowHosts?: readonly string[]
  /** Time budget of a call that may download, start and stop replicas, ms. */
  longCallMs: number
  /** Time budget of a call that only reads, ms. */
  shortCallMs: number
  /** This host's name, reported as every deployment's placement. */
  placement: string
  sourceKinds: readonly SourceKind[]
  /** Artifacts by sha256. */
  cacheDir: string
  /** `<id>/`: manifest, data, logs. */
  deploymentsDir: string
  /** A uid of its own per deployment from this range, when set. */
  uidRange?: UidRange
  /** The one user every replica runs as, when set. */
  sharedUser?: WorkloadUser
  /** setpriv's path when `uidRange` is set. */
  uidSetpriv: string
  m: LocalMetrics
  /** The host's cgroups, detected once on first use. */
  cgroups(): Promise<Cgroups>
  /** One operation per deployment at a time inside this daemon: the tail of each deployment's queue. */
  locks: Map<string, Promise<void>>
  /** Ports handed out by this daemon whose replica may not have bound yet → deployment id. */
  reserved: Map<number, string>
  /** Choosing a uid is one step across deployments: the tail of that queue. */
  uidLock: Promise<unknown>
  /** True once `close()` was called: every call is refused. */
  closed: boolean
}

export function createLocalMetrics(common: Common) {
  return {
    started: common.metrics.counter('bpo_local_replicas_started_total', 'Replica processes started by the local provisioner'),
    stopped: common.metrics.counter('bpo_local_replicas_stopped_total', 'Replica processes stopped by the local provisioner'),
  }
}

/** Check the parameters (throws CONFIG_INVALID, in this order) and build the context with every default filled. */
export function createLocalContext(common: Common, p: LocalProvisionerParameters): LocalContext {
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
  const host = p.host ?? '127.0.0.1'
  const urlHost = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host
  const [portLo, portHi] = p.portRange ?? [20000, 32000]
  if (!(Number.isInteger(portLo) && Number.isInteger(portHi) && portLo >= 1 && portHi <= 65535 && portLo <= portHi)) {
    throw new ProvisionError(`portRange must be two ports low <= high`, { code: 'CONFIG_INVALID' })
  }
  const healthTimeoutMs = p.healthTimeoutMs ?? 60_000
  const downloadTimeoutMs = p.downloadTimeoutMs ?? 120_000
  const stopGraceMs = p.stopGraceMs ?? 10_000

  let cgroups: Promise<Cgroups> | undefined
  return {
    common,
    log,
    rootDir: p.rootDir,
    operatorId: p.operatorId,
    host,
    urlHost,
    portRange: [portLo, portHi],
    healthTimeoutMs,
    downloadTimeoutMs,
    stopGraceMs,
    pidsMax: p.pidsMax ?? 1024,
    maxReplicas: p.maxReplicas ?? 64,
    maxLogBytes: p.maxLogBytes ?? 16 * 1024 * 1024,
    maxArtifactBytes: p.maxArtifactBytes,
    artifactAllowHosts: p.artifactAllowHosts,
    longCallMs: downloadTimeoutMs + healthTimeoutMs + 2 * stopGraceMs + 30_000,
    shortCallMs: 30_000,
    placement: hostname(),
    sourceKinds: ['native', 'testing'],
    cacheDir: join(p.rootDir, 'cache'),
    deploymentsDir: join(p.rootDir, 'deployments'),
    uidRange,
    sharedUser,
    uidSetpriv,
    m: createLocalMetrics(common),
    cgroups: () =>
      (cgroups ??= detectCgroups({ mode: p.cgroups ?? 'auto', owner: p.operatorId }).then((cg) => {
        if (cg.mode === 'none' && p.cgroups !== 'off') log.warn({ reason: cg.reason }, 'no cgroups available: replicas run without resource limits')
        else log.debug({ mode: cg.mode }, 'cgroups in use for replica limits')
        return cg
      })),
    locks: new Map(),
    reserved: new Map(),
    uidLock: Promise.resolve(),
    closed: false,
  }
}

/** A deployment's directory: manifest, `data/`, `logs/`, `bin/`. */
export const depDir = (ctx: LocalContext, id: string) => join(ctx.deploymentsDir, id)

/** Replica `i`'s log file. */
export const logFile = (ctx: LocalContext, id: string, i: number) => join(depDir(ctx, id), 'logs', `replica-${i}.log`)

/** The URL a replica listening on `port` is reached at. */
export const endpointOf = (ctx: LocalContext, port: number) => `http://${ctx.urlHost.includes(':') ? `[${ctx.urlHost}]` : ctx.urlHost}:${port}`

/** Who a deployment's replicas run as: its own uid (recorded in the manifest), the shared user, or the daemon. */
export const userOf = (ctx: LocalContext, m: Manifest): WorkloadUser | undefined =>
  ctx.uidRange && m.uid !== undefined ? { name: `uid ${m.uid}`, uid: m.uid, gid: m.uid, setpriv: ctx.uidSetpriv } : ctx.sharedUser

/** Run `fn` once every earlier operation on deployment `id` in this daemon has settled. */
export async function locked<T>(ctx: LocalContext, id: string, signal: AbortSignal, fn: () => Promise<T>): Promise<T> {
  const prev = ctx.locks.get(id) ?? Promise.resolve()
  let release!: () => void
  const mine = new Promise<void>((r) => (release = r))
  const chain = prev.then(() => mine)
  ctx.locks.set(id, chain)
  try {
    await prev
    checkAborted(signal, `local ${id}`)
    return await fn()
  } finally {
    release()
    if (ctx.locks.get(id) === chain) ctx.locks.delete(id)
  }
}

/** One public call: refused once closed, bounded by the caller's timeout (else `ms`) and signal. */
export function call<T>(ctx: LocalContext, what: string, ms: number, o: CallOptions | undefined, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  if (ctx.closed) return Promise.reject(new ProvisionError('local provisioner is closed', { code: 'PROVISIONER_CLOSED' }))
  return withTimeout(what, o?.timeoutMs ?? ms, fn, o?.signal)
}
