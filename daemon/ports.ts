/**
 * What the service manager needs from the chain and from the targets, as narrow types. The chain's escrow client
 * (chain/evm/escrow.ts) and the daemon's target registry (daemon/targets.ts) satisfy them.
 */
import type { Decimal } from '../core/money.js'
import type { ReasonCode } from '../core/errors.js'
import type { Offer, ProviderId } from '../core/offer.js'
import type { Requirements, ResourceSpec } from '../core/spec.js'
import type { BlueprintSource, Provisioner, SourceKind } from '../provisioners/types.js'

export type BlueprintView = {
  id: bigint
  developer: string
  name: string
  sources: Array<{ ok: true; source: BlueprintSource } | { ok: false; error: string }>
  requirements: Requirements
  pricePerHour: bigint[]
}

export type ServiceView = {
  state: string
  tier: number
  ratePerHour: bigint
  balance: bigint
  settledAt: bigint
  endsAt: bigint
}

export type EscrowPort = {
  getBlueprint(id: bigint, signal?: AbortSignal): Promise<BlueprintView | undefined>
  getService(id: bigint, signal?: AbortSignal): Promise<(ServiceView & Record<string, unknown>) | undefined>
  /** Many services in one call, in the order of `ids` (undefined: unknown id); as of `blockNumber` when given. */
  getServices(ids: readonly bigint[], signal?: AbortSignal, blockNumber?: bigint): Promise<Array<(ServiceView & Record<string, unknown>) | undefined>>
  activate(id: bigint, signal?: AbortSignal): Promise<unknown>
  withdraw(id: bigint, signal?: AbortSignal): Promise<{ hash: string; amount: bigint } | 'nothing'>
  refund(id: bigint, reason: ReasonCode, signal?: AbortSignal): Promise<unknown>
}

/** Capacity of an own target's fixed pool, shared by every service placed there. */
export type Capacity = { vcpu: number; memoryGiB: number; storageGiB: number }

/**
 * One place the daemon can buy capacity from: an own target (local, an SSH host, a cluster: one fixed offer over a
 * fixed pool) or a cloud (the catalog's on-demand offers in the account's regions, one VM per replica).
 */
export type Target = {
  /** "local", "ssh:<host>", "k8s:<cluster>", "aws", "hetzner". */
  name: string
  kind: 'own' | 'cloud'
  /** The offers' provider: "own" for own targets. */
  provider: ProviderId
  provisioner: Provisioner
  /** Placement hint passed to the provisioner (host or cluster name). */
  placement?: string
  sourceKinds: readonly SourceKind[]
  /** What this target sells for a spec: its fixed offer (own), or the catalog's offers in the allowed regions (cloud). */
  offersFor(spec: ResourceSpec): readonly Offer[]
  /** The fixed pool of an own target (undefined for clouds: a VM per replica, limited by the account's quota). */
  capacity?: Capacity
  /** The target scales on load by itself (Kubernetes' HPA): the daemon's autoscaler leaves it alone. */
  autoscales?: boolean
  /** How long a new replica may take to boot before it can be set up (cloud VMs), ms; added to call timeouts. */
  bootTimeoutMs?: number
  /** Most replicas (VMs) this target runs at once over all services; undefined = no limit of its own. */
  maxInstances?: number
  /** The live price of an offer with the account's credentials, where the provider's API has one (USD/h). */
  confirmPrice?(offer: Offer, spot: boolean, signal: AbortSignal): Promise<Decimal | undefined>
}

export type TargetRegistry = {
  list(): readonly Target[]
  byName(name: string): Target | undefined
  provisioners(): readonly Provisioner[]
  close(): Promise<void>
}
