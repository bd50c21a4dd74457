/**
 * What the service manager needs from the chain and from the targets, as narrow types. The chain's escrow client
 * (chain/evm/escrow.ts) and the daemon's target registry (daemon/targets.ts) satisfy them.
 */
import type { Decimal } from '../core/money.js'
import type { ReasonCode } from '../core/errors.js'
import type { Offer } from '../core/offer.js'
import type { Requirements } from '../core/spec.js'
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

/** One place the daemon can run services, with the offer it makes to the selection. */
export type Target = {
  /** "local", "ssh:<host>", "k8s:<cluster>". Equals the offer's instanceType. */
  name: string
  provisioner: Provisioner
  /** Placement hint passed to the provisioner (host or cluster name). */
  placement?: string
  sourceKinds: readonly SourceKind[]
  offer: Offer
  hourlyUsd: Decimal
}

export type TargetRegistry = {
  list(): readonly Target[]
  byName(name: string): Target | undefined
  provisioners(): readonly Provisioner[]
  close(): Promise<void>
}
