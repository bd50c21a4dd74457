/**
 * The local provisioner: runs a native artifact as real child processes on this machine, one per replica, detached
 * so they outlive the daemon; a restarted daemon adopts them from the manifests and a /proc scan of ownership markers.
 * Its steps live one per file in native/ (provision, status, scale, restart, destroy, listOwned, and below them
 * converge, startReplica, stopReplicas, discover, ...), composed here over one explicit LocalContext.
 */
import { mkdir, readdir, rm, rmdir } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import type { Common } from '../../core/common.js'
import { ProvisionError } from '../errors.js'
import type { OwnedResource, Provisioner } from '../types.js'
import type { UidRange } from '../../core/workloadUids.js'
import { withStableEndpoints } from '../balancer/withStableEndpoints.js'
import { readManifest, writeManifest, type Manifest } from './manifest.js'
import { ensureArtifact } from './native/artifact.js'
import { call, createLocalContext, depDir, DEPLOYMENT_ID, locked } from './native/context.js'
import { converge } from './native/converge.js'
import { scan, discover } from './native/discover.js'
import { checkAborted, invalid, notFound } from './native/errors.js'
import { status, statusOf } from './native/status.js'
import { killCgroupMembers, stopReplicas } from './native/stopReplicas.js'
import { ownManifest, validate, validateId } from './native/validate.js'
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
  const { log, deploymentsDir, longCallMs, shortCallMs, stopGraceMs, maxReplicas, placement, reserved } = ctx
  const native: Provisioner = {
    id: 'local',
    sourceKinds: ctx.sourceKinds,

    provision(req, o) {
      return call(ctx, `local provision ${req?.deploymentId}`, longCallMs, o, async (signal) => {
        validate(ctx, req)
        const id = req.deploymentId
        return locked(ctx, id, signal, async () => {
          await mkdir(deploymentsDir, { recursive: true })
          const existing = await readManifest(depDir(ctx, id))
          if (existing) ownManifest(ctx, existing)
          const now = new Date().toISOString()
          const m: Manifest = existing
            ? { ...existing, request: req, replicas: req.spec.replicas }
            : { version: 1, deploymentId: id, operatorId: p.operatorId, request: req, replicas: req.spec.replicas, replicaRecords: [], createdAt: now, updatedAt: now }
          await writeManifest(depDir(ctx, id), m)
          try {
            checkAborted(signal, `local provision ${id}`)
            if (m.replicas > 0) await ensureArtifact(ctx, m, signal)
            await converge(ctx, m, signal, false)
          } catch (err) {
            // only a record this call created, with no replica ever planned, is safe to forget
            if (!existing && m.replicaRecords.length === 0) await rm(depDir(ctx, id), { recursive: true, force: true }).catch(() => undefined)
            throw err
          }
          log.info({ deploymentId: id, replicas: m.replicas }, 'deployment provisioned')
          return statusOf(ctx, id, signal)
        })
      })
    },

    status: (id, o) => status(ctx, id, o),

    scale(id, replicas, o) {
      return call(ctx, `local scale ${id}`, longCallMs, o, async (signal) => {
        validateId(id)
        if (!Number.isInteger(replicas) || replicas < 0 || replicas > maxReplicas) throw invalid([`replicas: got ${replicas}, expected an integer 0..${maxReplicas}`])
        return locked(ctx, id, signal, async () => {
          const m = await readManifest(depDir(ctx, id))
          if (!m) throw notFound(id)
          ownManifest(ctx, m)
          m.replicas = replicas
          await writeManifest(depDir(ctx, id), m)
          if (replicas > 0) await ensureArtifact(ctx, m, signal)
          await converge(ctx, m, signal, false)
          log.info({ deploymentId: id, replicas }, 'deployment scaled')
          return statusOf(ctx, id, signal)
        })
      })
    },

    restart(id, o) {
      return call(ctx, `local restart ${id}`, longCallMs, o, async (signal) => {
        validateId(id)
        return locked(ctx, id, signal, async () => {
          const m = await readManifest(depDir(ctx, id))
          if (!m) throw notFound(id)
          ownManifest(ctx, m)
          if (m.replicas > 0) await ensureArtifact(ctx, m, signal)
          await converge(ctx, m, signal, true)
          return statusOf(ctx, id, signal)
        })
      })
    },

    destroy(id, o) {
      return call(ctx, `local destroy ${id}`, 2 * stopGraceMs + 30_000 + shortCallMs, o, async (signal) => {
        validateId(id)
        return locked(ctx, id, signal, async () => {
          const found = await readManifest(depDir(ctx, id))
          // a directory another operator wrote (a shared rootDir) is not ours to remove; its processes are skipped too
          const m = found?.operatorId === p.operatorId ? found : undefined
          const { byIndex, strays } = await discover(ctx, id, m, signal)
          await stopReplicas(ctx, m, [...byIndex.values(), ...strays])
          // children that left the replica's group still carry the markers
          const left = await scan(ctx, id, signal)
          await stopReplicas(ctx, m, left.map((l) => ({ pid: l.pid, startTime: l.startTime, pgrp: l.pgrp })))
          const cg = await ctx.cgroups()
          // whatever left the replicas' process groups and sessions (and dropped the markers) is still in their cgroups
          for (const r of m?.replicaRecords ?? []) await killCgroupMembers(ctx, id, r.cgroups)
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
          if (!found || m) await rm(depDir(ctx, id), { recursive: true, force: true })
          if (m || byIndex.size || strays.length) log.info({ deploymentId: id }, 'deployment destroyed')
        })
      })
    },

    listOwned(o) {
      return call(ctx, 'local listOwned', shortCallMs, o, async (signal) => {
        const out: OwnedResource[] = []
        for (const proc of await scan(ctx, undefined, signal)) out.push({ deploymentId: proc.deploymentId, kind: 'process', id: String(proc.pid), placement })
        // processes that cleared their environment are found by the cgroup they cannot leave
        for (const g of await (await ctx.cgroups()).populated()) {
          if (DEPLOYMENT_ID.test(g.deploymentId)) out.push({ deploymentId: g.deploymentId, kind: 'cgroup', id: g.dir, placement })
        }
        for (const name of await readdir(deploymentsDir).catch(() => [] as string[])) {
          checkAborted(signal, 'local listOwned')
          const m = await readManifest(depDir(ctx, name)).catch(() => undefined)
          if (m?.operatorId === p.operatorId) out.push({ deploymentId: m.deploymentId, kind: 'deployment-dir', id: depDir(ctx, name), placement })
        }
        return out
      })
    },

    async close() {
      ctx.closed = true
    },
  }
  const { host, urlHost, portRange, healthTimeoutMs } = ctx
  // container sources: a dispatch on source kind (withContainers.ts)
  const inner = withContainers(common, native, p, { host, portRange: [...portRange], healthTimeoutMs, stopGraceMs, maxReplicas, longCallMs })
  // one stable port per deployment, balancing over its replicas (provisioners/balancer/withStableEndpoints.ts)
  if (p.stableEndpoints === false) return inner
  return withStableEndpoints(common, inner, { stateDir: join(p.rootDir, 'endpoints', `op-${p.operatorId}`), operatorId: p.operatorId, listenHost: host, urlHost, portRange: [...portRange], usedPorts: () => replicaPorts(deploymentsDir) })
}
