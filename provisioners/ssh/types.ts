/** Types of the SSH target: the hosts an operator lists and what the provisioner reports about them. */
import type { DeploymentRequest } from '../types.js'

/** One SSH host from the operator's configuration (the daemon resolves the key reference before this point). */
export type SshHost = {
  /** Unique name, used as `req.placement` and in status. */
  name: string
  address: string
  port: number
  user: string
  /** Private key contents (OpenSSH or PEM). A secret: never logged. */
  privateKey: string
  /** Pinned public host key, "ssh-ed25519 AAAA..." form. */
  hostKey: string
  capacity: { vcpu: number; memoryGiB: number; storageGiB: number }
  /** Decimal USD per hour, e.g. "0.08". */
  hourlyUsd: string
  region?: string
  labels?: Record<string, string>
  /** Where deployments live on the host. Default "/var/lib/blueprint-operator". */
  remoteRoot?: string
  /** Host ports handed to replicas (inclusive). Default 20000..29999. */
  ports?: { from: number; to: number }
  /**
   * Run native workloads as this existing unprivileged user (setpriv; the SSH login must be root), so they can write
   * neither the host agent nor the artifacts nor their supervisor's files, nor leave their cgroups. Default: the SSH user.
   */
  workloadUser?: string
  /**
   * Run each native deployment as a uid of its own from this inclusive range (setpriv --reuid N --regid N
   * --clear-groups, no passwd entry; the SSH login must be root): it then reads no other deployment's data, env file
   * or log. Recorded with the placement (ledger and host manifest) and kept. Excludes `workloadUser`.
   */
  workloadUids?: { from: number; to: number }
}

export type Resources = { vcpu: number; memoryGiB: number; storageGiB: number }

/** How replicas are supervised on a host: pidfile supervisor, systemd unit, or the container runtime. */
export type ReplicaMode = 'setsid' | 'systemd-system' | 'systemd-user' | 'podman' | 'docker'

/** One deployment's place and reservation in the ledger (and, as the manifest, on its host). */
export type Placement = {
  deploymentId: string
  host: string
  kind: 'native' | 'container'
  /** The request as provisioned (env is non-secret by contract). */
  request: DeploymentRequest
  /** Per replica. */
  unit: Resources
  replicas: number
  /** Replicas that have (kept) data dirs: storage stays reserved for them at scale 0. */
  dataReplicas: number
  /** Host port per replica index. */
  ports: Record<string, number>
  /** The deployment's own workload uid on its host (native sources on a host with `workloadUids`). */
  uid?: number
  createdAt: string
}

export type HostCapacity = {
  host: string
  hourlyUsd: string
  region?: string | undefined
  total: Resources
  used: Resources
  free: Resources
}
