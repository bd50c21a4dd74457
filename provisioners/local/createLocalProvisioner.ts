/**
 * The local provisioner: runs a native artifact as real child processes on this machine, one per replica, detached
 * so they outlive the daemon; a restarted daemon adopts them from the manifests and a /proc scan of ownership markers.
 * Its steps live one per file in native/ (provision, status, scale, restart, destroy, listOwned, and below them
 * converge, startReplica, stopReplicas, discover, ...), composed here over one explicit LocalContext.
 */
import { join } from 'node:path'
import type { Common } from '../../core/common.js'
import type { UidRange } from '../../core/workloadUids.js'
import { withStableEndpoints } from '../balancer/withStableEndpoints.js'
import type { Provisioner } from '../types.js'
import { createLocalContext } from './native/context.js'
import { destroy } from './native/destroy.js'
import { listOwned } from './native/listOwned.js'
import { provision } from './native/provision.js'
import { restart } from './native/restart.js'
import { scale } from './native/scale.js'
import { status } from './native/status.js'
import { replicaPorts } from './replicaPorts.js'
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

/** Create the local provisioner (sources: native, testing; container where podman works). Throws on invalid parameters. */
export function createLocalProvisioner(common: Common, p: LocalProvisionerParameters): LocalProvisioner {
  const ctx = createLocalContext(common, p)
  const native: Provisioner = {
    id: 'local',
    sourceKinds: ctx.sourceKinds,
    provision: (req, o) => provision(ctx, req, o),
    status: (id, o) => status(ctx, id, o),
    scale: (id, replicas, o) => scale(ctx, id, replicas, o),
    restart: (id, o) => restart(ctx, id, o),
    destroy: (id, o) => destroy(ctx, id, o),
    listOwned: (o) => listOwned(ctx, o),
    async close() {
      ctx.closed = true
    },
  }
  const { host, urlHost, portRange, healthTimeoutMs, stopGraceMs, maxReplicas, longCallMs } = ctx
  // container sources: a dispatch on source kind (withContainers.ts)
  const inner = withContainers(common, native, p, { host, portRange: [...portRange], healthTimeoutMs, stopGraceMs, maxReplicas, longCallMs })
  // one stable port per deployment, balancing over its replicas (provisioners/balancer/withStableEndpoints.ts)
  if (p.stableEndpoints === false) return inner
  return withStableEndpoints(common, inner, { stateDir: join(p.rootDir, 'endpoints', `op-${p.operatorId}`), operatorId: p.operatorId, listenHost: host, urlHost, portRange: [...portRange], usedPorts: () => replicaPorts(ctx.deploymentsDir) })
}
