/**
 * The Provisioner contract every target implements (local, ssh, kubernetes, clouds). The shared contract test
 * suite in test/provisioner-contract/ checks it.
 */
import type { ResourceSpec } from '../core/spec.js'

import type { BlueprintSource, SourceKind } from '../core/source.js'

export type { BlueprintSource, SourceKind } from '../core/source.js'

export type DeploymentRequest = {
  /** DNS-safe, unique, stable id: every resource is named by it (e.g. "bp-31337-7"). */
  deploymentId: string
  /** On-chain ids as decimal strings, passed to the workload's environment. */
  serviceId: string
  blueprintId: string
  source: BlueprintSource
  spec: ResourceSpec
  /** Non-secret environment for the workload. Keys must match /^[A-Z_][A-Z0-9_]*$/. */
  env?: Record<string, string>
  /** HTTP path probed for health on the first port (default "/"). */
  healthPath?: string
  /** Target-specific placement chosen by the daemon (an SSH host name, a cluster name); optional. */
  placement?: string
  /** The offer placement bought (clouds: the instance type in a region); own targets ignore it. */
  offer?: { provider: string; region: string; instanceType: string; spot: boolean; hourlyUsd: string }
}

export type DeploymentStatus = {
  deploymentId: string
  /** False when nothing of this deployment exists on the target. */
  exists: boolean
  replicasWanted: number
  replicasReady: number
  /**
   * URLs (http://host:port) where the service answers: the deployment's one stable endpoint where the target has one
   * (local and SSH: a balancing port; Kubernetes: the Service), else one per ready replica (clouds). Empty while no
   * replica is ready.
   */
  endpoints: string[]
  /** Per-replica URLs behind a stable endpoint, one per ready replica (for operators; targets with a balancer). */
  replicaEndpoints?: string[]
  /** True when replicasReady === replicasWanted and health checks pass (vacuously true at 0 replicas). */
  healthy: boolean
  /** Where it runs (host, cluster, namespace), for operators. */
  placement?: string
  detail?: string
  /**
   * CPU counters of the running replicas, read when the status was taken (absent where the target cannot read
   * them). Utilisation is the difference of two readings of the same replica incarnation (same `id`) over the time
   * between them, divided by the replica's vCPU (core/autoscale.ts).
   */
  usage?: DeploymentUsage
}

/** One reading of every running replica's CPU counter. */
export type DeploymentUsage = {
  /** When the counters were read, ms since the epoch. */
  at: number
  replicas: ReplicaUsage[]
}

export type ReplicaUsage = {
  index: number
  /** This incarnation of the replica (pid and start time, container id, ...): a new id means the counter restarted. */
  id: string
  /** CPU seconds used by the replica (its whole cgroup) since this incarnation started. */
  cpuSeconds: number
}

export type OwnedResource = {
  deploymentId: string
  /** What it is on the target: "process", "unit", "namespace", "instance", ... */
  kind: string
  /** The target's own id for it (pid, unit name, namespace, instance id). */
  id: string
  placement?: string
}

export type CallOptions = {
  signal?: AbortSignal
  /** Per-call timeout in ms; each target has a sensible default. */
  timeoutMs?: number
}

/** What a target found it can do on this machine at start-up (only where it depends on the machine). */
export type Capabilities = {
  /** Container sources: podman works here, or the reason it does not (shown in /api/status and config check). */
  container?: { ok: true; detail?: string } | { ok: false; reason: string }
}

export type Provisioner = {
  /** Target id, e.g. "local", "ssh", "kubernetes". */
  readonly id: string
  /** Source kinds this target can run. */
  readonly sourceKinds: readonly SourceKind[]
  /** What the machine allows (see Capabilities); undefined until checked. Optional: targets without such checks. */
  capabilities?(): Capabilities
  /**
   * Create (or adopt) the deployment and start `spec.replicas` replicas. Idempotent on `deploymentId`: a second
   * call adopts what an earlier call or a crashed daemon created. Throws ProvisionError (with a reason code).
   */
  provision(req: DeploymentRequest, o?: CallOptions): Promise<DeploymentStatus>
  status(deploymentId: string, o?: CallOptions): Promise<DeploymentStatus>
  /** Set the replica count; 0 stops everything but keeps data where the target allows. */
  scale(deploymentId: string, replicas: number, o?: CallOptions): Promise<DeploymentStatus>
  /** Restart unhealthy replicas in place (best effort); returns the new status. */
  restart(deploymentId: string, o?: CallOptions): Promise<DeploymentStatus>
  /** Remove every resource of the deployment; already gone is success. */
  destroy(deploymentId: string, o?: CallOptions): Promise<void>
  /** Every resource carrying this operator's ownership label (and none of another operator's). */
  listOwned(o?: CallOptions): Promise<OwnedResource[]>
  /** Release connections and timers (not the workloads). */
  close(): Promise<void>
}
