/**
 * The explicit context every step of the SSH target works over (STYLE.md 11): the hosts known now (a cloud target adds
 * and removes them at run time), the SSH pool, the host agent, the placement ledger and the settings, plus the few
 * helpers all steps share (one operation per deployment, the call timeout, names and endpoints on a host). Built once
 * by `createSshProvisioner`.
 */
import { setMaxListeners } from 'node:events'
import { join } from 'node:path'
import type { Common } from '../../core/common.js'
import { AbortedError } from '../../core/errors.js'
import { withTimeout } from '../../core/retry.js'
import type { UidRange } from '../../core/workloadUids.js'
import { createAddressPolicy, type AddressPolicy } from '../artifacts/addressPolicy.js'
import { namePrefix } from '../container/rules.js'
import { ProvisionError } from '../errors.js'
import type { CallOptions, DeploymentRequest, DeploymentStatus, SourceKind } from '../types.js'
import { createSshPool, type SshPool } from './connection.js'
import type { SshProvisionerParameters } from './createSshProvisioner.js'
import { createHostAgent, type HostAgent } from './hostAgent.js'
import { openLedger, type Ledger } from './ledger.js'
import type { Placement, Resources, SshHost } from './types.js'

export type SshContext = {
  common: Common
  log: Common['logger']
  /** This operator's ownership marker (BPO_OWNER, container labels, remote directory). */
  operatorId: string
  /** The hosts known now, by name: validated; cloud VMs are added and removed at run time (hosts.ts). */
  hosts: Map<string, SshHost>
  pool: SshPool
  agent: HostAgent
  /** Placements and reservations, persisted in the state dir. */
  ledger: Ledger
  sourceKinds: SourceKind[]
  transfer: 'upload' | 'host-download'
  /** Added to the REPLICA_INDEX a workload sees. */
  replicaIndexBase: number
  addressPolicy: AddressPolicy
  artifactAllowHosts: readonly string[] | undefined
  maxArtifactBytes: number
  /** Daemon-side artifact cache ("upload" transfer). */
  cacheDir: string
  supervisor: 'auto' | 'setsid' | 'systemd'
  healthTimeoutMs: number
  probeTimeoutMs: number
  /** Seconds between SIGTERM and SIGKILL, as the host agent's argument. */
  grace: string
  /** Whole-call default timeouts: provision/scale/restart, and the others. */
  provisionMs: number
  otherMs: number
  /** The tail of the operation in flight per deployment (see `locked`). */
  locks: Map<string, Promise<unknown>>
}

/** Value handed to workloads as HOST: replicas listen on every address of their host. */
export const HOST_ENV_VALUE = '0.0.0.0'
export const DEFAULT_PORTS = { from: 20_000, to: 29_999 }
export const GiB = 1024 ** 3

/** The context over already validated `hosts`; connects lazily. */
export function createSshContext(common: Common, p: SshProvisionerParameters, hosts: Map<string, SshHost>): SshContext {
  // in this order: a bad allow-list throws before a connection pool or the ledger's directory exists
  const addressPolicy = createAddressPolicy(p.artifactAllowHosts)
  const pool = createSshPool(common, { connectTimeoutMs: p.connectTimeoutMs, commandTimeoutMs: p.commandTimeoutMs ?? 120_000 })
  const agent = createHostAgent(common, pool, p.operatorId)
  for (const h of hosts.values()) agent.layout(h)
  const ledger = openLedger(p.stateDir)
  return {
    common,
    log: common.logger,
    operatorId: p.operatorId,
    hosts,
    pool,
    agent,
    ledger,
    sourceKinds: p.allowTestingSources ? ['native', 'container', 'testing'] : ['native', 'container'],
    transfer: p.artifactTransfer ?? 'upload',
    replicaIndexBase: p.replicaIndexBase ?? 0,
    addressPolicy,
    artifactAllowHosts: p.artifactAllowHosts,
    maxArtifactBytes: p.maxArtifactBytes ?? 512 * 1024 * 1024,
    cacheDir: p.artifactCacheDir ?? join(p.stateDir, 'artifacts'),
    supervisor: p.supervisor ?? 'auto',
    healthTimeoutMs: p.healthTimeoutMs ?? 60_000,
    probeTimeoutMs: p.probeTimeoutMs ?? 2_000,
    grace: String(Math.max(0, Math.round(p.stopGraceSeconds ?? 10))),
    provisionMs: p.callTimeoutMs?.provision ?? 900_000,
    otherMs: p.callTimeoutMs?.other ?? 180_000,
    locks: new Map(),
  }
}

/** One operation at a time per deployment; different deployments proceed in parallel. */
export function locked<T>(ctx: SshContext, id: string, fn: () => Promise<T>): Promise<T> {
  const prev = ctx.locks.get(id) ?? Promise.resolve()
  const run = prev.then(fn, fn)
  const tail = run.catch(() => undefined)
  ctx.locks.set(id, tail)
  void tail.then(() => {
    if (ctx.locks.get(id) === tail) ctx.locks.delete(id)
  })
  return run
}

/** Run one provisioner call under the caller's signal, the provisioner's own, and a timeout (`defMs` by default). */
export function call<T>(ctx: SshContext, what: string, o: CallOptions | undefined, defMs: number, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  if (o?.signal?.aborted) return Promise.reject(new AbortedError(`ssh ${what}`, o.signal.reason))
  const parent = o?.signal ? AbortSignal.any([o.signal, ctx.common.signal]) : ctx.common.signal
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

/** The host a placement is on; SSH_HOST_UNKNOWN when it is not configured (any more). */
export function hostOf(ctx: SshContext, pl: Placement): SshHost {
  const h = ctx.hosts.get(pl.host)
  if (!h) throw new ProvisionError(`deployment ${pl.deploymentId} is on host ${pl.host}, which is no longer configured`, { code: 'SSH_HOST_UNKNOWN', retryable: false, meta: { host: pl.host } })
  return h
}

export const endpointOf = (h: SshHost, port: number) => `http://${h.address.includes(':') ? `[${h.address}]` : h.address}:${port}`
export const unitOf = (req: DeploymentRequest): Resources => ({ vcpu: req.spec.vcpu, memoryGiB: req.spec.memoryGiB, storageGiB: req.spec.storageGiB })
export const times = (u: Resources, n: number): Resources => ({ vcpu: u.vcpu * n, memoryGiB: u.memoryGiB * n, storageGiB: u.storageGiB * n })
export const nameOf = (ctx: SshContext, h: SshHost, id: string, i: number) => `${cgroupPrefixOf(ctx, h, id)}${i}`
/** Unit, container and cgroup names of a deployment's replicas: this prefix and the replica index. */
export const cgroupPrefixOf = (ctx: SshContext, h: SshHost, id: string) => namePrefix(ctx.agent.layout(h).tag, id)
export const uidRangeOf = (h: SshHost): UidRange | undefined => (h.workloadUids ? [h.workloadUids.from, h.workloadUids.to] : undefined)

/** The status of a deployment that does not exist (here). */
export const absent = (deploymentId: string, detail?: string): DeploymentStatus => ({
  deploymentId,
  exists: false,
  replicasWanted: 0,
  replicasReady: 0,
  endpoints: [],
  healthy: false,
  ...(detail ? { detail } : {}),
})
