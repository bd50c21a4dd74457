/**
 * The daemon's TFChain follow: the watcher of the operator's twin (chain/substrate/watchTfchain.ts), its cursor at
 * `<data_dir>/tfchain/cursor.json`, each block's events applied to the services in one state write
 * (daemon/tfchainIntake.ts), then the services touched kicked. Started only when `[providers.threefold]` is enabled.
 */
import { join } from 'node:path'
import type { Common } from '../core/common.js'
import type { Decimal } from '../core/money.js'
import type { TfchainCursor } from '../chain/substrate/cursor.js'
import { createTfchainWatcher, type TfchainWatcher, type TfchainWatcherParameters } from '../chain/substrate/watchTfchain.js'
import { tfchainTypesOf } from '../provisioners/threefold/fromConfig.js'
import { loadOwnCancels } from '../provisioners/threefold/ownCancels.js'
import { cachedTftUsd, tftUsdReader } from './tftUsd.js'
import type { OperatorConfig } from './config.js'
import type { Store } from './store.js'
import { applyTfchainEvents } from './tfchainIntake.js'

export type TfchainFollowParameters = {
  /** WebSocket URL of a TFChain node. */
  url: string
  twinId: number
  dataDir: string
  store: Store
  /** USD per TFT now (asked only for blocks with bills). */
  usdPerTft(): Promise<Decimal>
  /** Queue a step of a service whose record changed. */
  kick(serviceId: string): void
  /** The contract ids the daemon cancelled itself (read at each block with events). Default none. */
  ownCancels?(): ReadonlySet<string>
} & Partial<Pick<TfchainWatcherParameters, 'types' | 'pollIntervalMs' | 'startBlock' | 'nodeDownAfterMs'>>

export type TfchainFollow = TfchainWatcher & {
  /** When a block was last delivered and applied (Date.now() ms), undefined before the first. */
  lastDeliveryAt(): number | undefined
}

/** A watcher whose delivery applies the events to the store; nothing connects until `start()` or `pollOnce()`. */
export function createTfchainFollow(common: Common, p: TfchainFollowParameters): TfchainFollow {
  const log = common.logger
  const { url, twinId, dataDir, store, usdPerTft, kick, ownCancels, ...rest } = p
  // contracts cancelled in a block are gone from the cursor after it: events of that block find them in the one before
  let before: TfchainCursor['contracts'] = {}
  let lastDelivery: number | undefined
  const watcher = createTfchainWatcher(common, {
    ...rest,
    url,
    twinId,
    cursorPath: join(dataDir, 'tfchain', 'cursor.json'),
    async deliver(events, cursor) {
      const contracts = { ...before, ...cursor.contracts }
      if (events.length) {
        // a bill's USD value is taken at the rate of its delivery; without a rate the block is retried, not half-counted
        const rate = events.some((e) => e.type === 'contract-billed') ? await usdPerTft() : '0'
        const own = ownCancels?.()
        const touched = await store.update((st) => applyTfchainEvents(st, events, { usdPerTft: rate, contracts, ...(own && { ownCancels: own }), logger: log.child({ module: 'tfchain-intake' }) }))
        for (const id of touched) kick(id)
      }
      before = cursor.contracts
      lastDelivery = Date.now()
    },
  })
  return { ...watcher, lastDeliveryAt: () => lastDelivery }
}

/** A TFChain watcher silent this long is reported by the readiness check (blocks come every 6 s, empty ones too). */
export const TFCHAIN_STALE_MS = 300_000

/** The readiness check of the TFChain follow (not critical: the escrow side works without it). */
export function tfchainCheck(p: { leading: boolean; lastDeliveryAt: number | undefined; now: number }): { name: string; ok: boolean; critical: false; detail: string } {
  const c = { name: 'tfchain-watcher', critical: false as const }
  if (!p.leading) return { ...c, ok: true, detail: 'another daemon leads and follows TFChain' }
  if (p.lastDeliveryAt === undefined) return { ...c, ok: false, detail: 'TFChain has not been read yet (is [providers.threefold] substrate_url reachable?): grid bills and lost deployments wait' }
  const at = new Date(p.lastDeliveryAt).toISOString()
  if (p.now - p.lastDeliveryAt > TFCHAIN_STALE_MS) return { ...c, ok: false, detail: `no TFChain block delivered since ${at}: grid bills and lost deployments wait` }
  return { ...c, ok: true, detail: `last TFChain block delivered ${at}` }
}

/** The follow for `[providers.threefold]`, or undefined when the section is not enabled. */
export function tfchainFollowFromConfig(common: Common, config: OperatorConfig, p: { store: Store; kick(serviceId: string): void }): TfchainFollow | undefined {
  const tf = config.providers.threefold
  if (!tf?.enabled || tf.twinId === undefined) return undefined
  const types = tfchainTypesOf(tf)
  return createTfchainFollow(common, {
    url: tf.substrateUrl,
    twinId: tf.twinId,
    dataDir: config.operator.dataDir,
    store: p.store,
    kick: p.kick,
    usdPerTft: cachedTftUsd(tf.substrateUrl, tftUsdReader(tf.substrateUrl, types)),
    // the grid target's record, in the same place createThreefoldFromConfig keeps its state
    ownCancels: () => loadOwnCancels(join(config.operator.dataDir, 'threefold')),
    ...(types && { types }),
  })
}
