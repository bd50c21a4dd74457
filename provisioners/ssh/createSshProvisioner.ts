/**
 * The SSH target: runs deployments on the operator's own hosts over SSH. Places each deployment on the cheapest host
 * with free capacity (ledger in the state dir), installs native artifacts verified by sha256 on the host, supervises
 * every replica (systemd unit, pidfile supervisor, or the container runtime) so it outlives the SSH session.
 *
 * `createSshProvisioner` composes the named steps of this folder over one explicit SshContext (context.ts): one file
 * per lifecycle step (deploy, status, scale, restart, destroy, listOwned, hosts, capacity), and the steps they share
 * (locate, reserve, converge, manifest, artifact, containers).
 */
import type { Common } from '../../core/common.js'
import type { Provisioner } from '../types.js'
import { capacity, placements } from './capacity.js'
import { createSshContext } from './context.js'
import { deploy } from './deploy.js'
import { destroy } from './destroy.js'
import { addHost, configuredHosts, hostNames, removeHost } from './hosts.js'
import { listOwned } from './listOwned.js'
import { restart } from './restart.js'
import { scale } from './scale.js'
import { status } from './status.js'
import type { HostCapacity, Placement, SshHost } from './types.js'
import { OPERATOR_ID_RE } from './validate.js'

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
  return {
    id: 'ssh',
    sourceKinds: ctx.sourceKinds,
    provision: (req, o) => deploy(ctx, req, o),
    status: (deploymentId, o) => status(ctx, deploymentId, o),
    scale: (deploymentId, replicas, o) => scale(ctx, deploymentId, replicas, o),
    restart: (deploymentId, o) => restart(ctx, deploymentId, o),
    destroy: (deploymentId, o) => destroy(ctx, deploymentId, o),
    listOwned: (o) => listOwned(ctx, o),
    async close() {
      await ctx.pool.close()
    },
    placements: () => placements(ctx),
    capacity: () => capacity(ctx),
    addHost: (h) => addHost(ctx, h),
    removeHost: (name) => removeHost(ctx, name),
    hostNames: () => hostNames(ctx),
  }
}
