/**
 * The SSH target: runs deployments on the operator's own hosts over SSH. Places each deployment on the cheapest host
 * with free capacity (ledger in the state dir), installs native artifacts verified by sha256 on the host, supervises
 * every replica (systemd unit, pidfile supervisor, or the container runtime) so it outlives the SSH session.
 */
import type { Common } from '../../core/common.js'
import { ProvisionError, TargetUnreachableError } from '../errors.js'
import type { DeploymentStatus, OwnedResource, Provisioner } from '../types.js'
import { capacity, placements } from './capacity.js'
import { removeContainers, ownedContainers } from './containers.js'
import { call, cgroupPrefixOf, createSshContext, endpointOf, hostOf, locked, nameOf, unitOf } from './context.js'
import { converge } from './converge.js'
import { addHost, configuredHosts, hostNames, removeHost } from './hosts.js'
import { adopt, locate } from './locate.js'
import { writeManifest } from './manifest.js'
import { allocatePorts, ensureUid, placeAndReserve, reserve } from './reserve.js'
import { status, statusFrom, waitReady } from './status.js'
import type { HostCapacity, Placement, SshHost } from './types.js'
import { DEPLOYMENT_ID_RE, OPERATOR_ID_RE, assertDeploymentId, assertReplicas, assertRequest } from './validate.js'

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

/** Create the SSH provisioner. Validates the host list at once; connects lazily. */
export function createSshProvisioner(commonIn: Common, p: SshProvisionerParameters): SshProvisioner {
  const common = commonIn.child('provisioner-ssh')
  if (!OPERATOR_ID_RE.test(p.operatorId)) throw new TypeError(`operatorId: got ${JSON.stringify(p.operatorId)}, expected ${OPERATOR_ID_RE}`)
  const ctx = createSshContext(common, p, configuredHosts(p.hosts))
  const { log, hosts, agent, ledger, sourceKinds, grace, provisionMs, otherMs } = ctx

  async function scaleTo(h: SshHost, id: string, n: number, signal: AbortSignal): Promise<DeploymentStatus> {
    const growing = n >= ledger.get(id)!.replicas
    // growing reserves before starting; shrinking releases capacity only once the replicas are stopped
    let pl = growing ? await reserve(ctx, id, n) : ledger.get(id)!
    if (growing) {
      await allocatePorts(ctx, h, id, n, signal)
      pl = await ensureUid(ctx, h, id)
      await writeManifest(ctx, h, pl, signal)
    }
    const written = JSON.stringify(pl.ports)
    await converge(ctx, h, id, n, signal)
    if (!growing) pl = await reserve(ctx, id, n)
    else pl = ledger.get(id)!
    // converge may have moved a replica to a new port
    if (!growing || JSON.stringify(pl.ports) !== written) await writeManifest(ctx, h, pl, signal)
    await waitReady(ctx, h, pl, signal)
    return statusFrom(ctx, h, pl, await agent.status(h, id, { signal }), signal)
  }

  const provisioner: SshProvisioner = {
    id: 'ssh',
    sourceKinds,

    provision(req, o) {
      return call(ctx, 'provision', o, provisionMs, (signal) =>
        locked(ctx, req.deploymentId ?? '', async () => {
          assertRequest(req)
          if (!sourceKinds.includes(req.source.kind)) throw new ProvisionError(`source kind ${req.source.kind} is not accepted by this operator`, { reason: 'MALFORMED_REQUEST', code: 'SOURCE_KIND_REFUSED' })
          const kind: Placement['kind'] = req.source.kind === 'container' ? 'container' : 'native'
          const id = req.deploymentId
          let found = await locate(ctx, id, signal, req.placement)
          if (found && !ledger.get(id)) await adopt(ctx, found.placement)
          if (!found) {
            const pl = await placeAndReserve(ctx, req, kind, signal)
            log.info({ deploymentId: id, host: pl.host, kind }, 'placing deployment')
            found = { host: hostOf(ctx, pl), placement: pl, remote: { present: false } }
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

    status: (deploymentId, o) => status(ctx, deploymentId, o),

    scale(deploymentId, replicas, o) {
      return call(ctx, 'scale', o, provisionMs, (signal) =>
        locked(ctx, deploymentId, async () => {
          assertDeploymentId(deploymentId)
          assertReplicas(replicas)
          const found = await locate(ctx, deploymentId, signal)
          if (!found || !found.remote.present) throw new ProvisionError(`deployment ${deploymentId} does not exist on any SSH host`, { code: 'DEPLOYMENT_NOT_FOUND', retryable: false })
          if (!ledger.get(deploymentId)) await adopt(ctx, found.placement)
          return scaleTo(found.host, deploymentId, replicas, signal)
        }),
      )
    },

    restart(deploymentId, o) {
      return call(ctx, 'restart', o, provisionMs, (signal) =>
        locked(ctx, deploymentId, async () => {
          assertDeploymentId(deploymentId)
          const found = await locate(ctx, deploymentId, signal)
          if (!found || !found.remote.present) throw new ProvisionError(`deployment ${deploymentId} does not exist on any SSH host`, { code: 'DEPLOYMENT_NOT_FOUND', retryable: false })
          const { host: h, placement: pl } = found
          const st = await statusFrom(ctx, h, pl, found.remote, signal)
          const depDir = agent.layout(h).dep(deploymentId)
          const readyPorts = new Set(st.endpoints)
          const bad = Array.from({ length: pl.replicas }, (_, i) => i).filter((i) => {
            const port = pl.ports[String(i)]
            return port === undefined || !readyPorts.has(endpointOf(h, port))
          })
          for (const i of bad) {
            log.warn({ deploymentId, host: h.name, replica: i }, 'restarting an unhealthy replica')
            await agent.must(h, `stopping replica ${i}`, ['stop', depDir, String(i), grace, nameOf(ctx, h, deploymentId, i)], { signal })
          }
          if (bad.length) {
            await converge(ctx, h, deploymentId, pl.replicas, signal)
            await waitReady(ctx, h, pl, signal)
          }
          return statusFrom(ctx, h, pl, await agent.status(h, deploymentId, { signal }), signal)
        }),
      )
    },

    destroy(deploymentId, o) {
      return call(ctx, 'destroy', o, otherMs, (signal) =>
        locked(ctx, deploymentId, async () => {
          assertDeploymentId(deploymentId)
          const known = ledger.get(deploymentId)
          const targets = known ? [hostOf(ctx, known)] : [...hosts.values()]
          let unreachable: unknown
          await Promise.all(
            targets.map(async (h) => {
              try {
                await agent.must(h, 'destroying the deployment', ['destroy', agent.layout(h).dep(deploymentId), grace, cgroupPrefixOf(ctx, h, deploymentId)], { signal })
                const f = await agent.facts(h, { signal })
                if (f.runtime !== 'none') await removeContainers(ctx, h, f.runtime, deploymentId, signal)
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
      return call(ctx, 'listOwned', o, otherMs, async (signal) => {
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
                if (DEPLOYMENT_ID_RE.test(id) && name === nameOf(ctx, h, id, Number(name.slice(name.lastIndexOf('-r') + 2)))) {
                  out.push({ deploymentId: id, kind: 'cgroup', id: `${h.name}:${name}`, placement: h.name })
                }
              }
              if (f.runtime !== 'none') {
                for (const c of await ownedContainers(ctx, h, f.runtime, undefined, signal)) {
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
      await ctx.pool.close()
    },

    placements: () => placements(ctx),
    addHost: (h) => addHost(ctx, h),
    removeHost: (name) => removeHost(ctx, name),
    hostNames: () => hostNames(ctx),
    capacity: () => capacity(ctx),
  }

  return provisioner
}
