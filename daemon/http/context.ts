/**
 * What the HTTP routes read and act on: the store, the targets, the catalog, the event bus, the operator actions and
 * a few live facts of the daemon. Each route group gets this one object.
 */
import type { Common } from '../../core/common.js'
import type { OperatorConfig } from '../config.js'
import type { Secret } from '../../config/secrets.js'
import type { Catalog } from '../../pricing/catalog.js'
import type { Actions } from '../actions.js'
import type { EventBus } from '../events.js'
import type { ObservedTargets } from '../observe.js'
import type { Store } from '../store.js'

export type ReadinessCheck = { name: string; ok: boolean; detail: string; critical: boolean }

export type ChainFacts = { chainId: number; head?: string; cursor?: string; cursorHash?: string; lag?: number; lastDeliveryAt?: string }

export type HttpContext = {
  common: Common
  config: OperatorConfig
  store: Store
  targets: ObservedTargets
  catalog?: Catalog | undefined
  bus: EventBus
  actions: Actions
  /** `[http] admin_token`: without it the operator actions answer 403 ACTIONS_DISABLED. */
  adminToken?: Secret | undefined
  /** This operator's address (lowercase). */
  operator: string
  chain(): ChainFacts
  /** Chain time, unix seconds (the later of the last block's time and the wall clock). */
  now(): bigint
  checks(): Promise<ReadinessCheck[]>
  /** More of the daemon's status for /api/status (placement blocks, catalog health). */
  extra?(): Record<string, unknown>
  /** Capacity promised on a target by the services placed there (the service manager's book). */
  usedOn?(target: string): { vcpu: number; memoryGiB: number; storageGiB: number }
}
