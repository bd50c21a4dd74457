/**
 * `[providers.threefold]` → the grid target: a supervised grid worker (the mnemonic resolved from its secret
 * reference at every worker start and sent over IPC), the provisioner, and a cloud target over the catalog's
 * threefold offers. The TFT/USD rate for the runway check is the chain's own (`tftPriceModule`), cached 10 minutes.
 */
import { join } from 'node:path'
import type { Decimal } from 'decimal.js'
import type { Common } from '../../core/common.js'
import type { Offer } from '../../core/offer.js'
import { fetchTfchain } from '../../pricing/sources/tfchain.js'
import type { Provisioner } from '../types.js'
import type { ThreefoldSection } from './config.js'
import { createGridSupervisor } from './createGridSupervisor.js'
import { createThreefoldProvisioner } from './createThreefoldProvisioner.js'

export type ThreefoldFromConfigContext = { dataDir: string; allowTestSources: boolean; catalogOffers(): readonly Offer[] }

/** The provisioner of an enabled section, or undefined when the section is disabled. */
export function createThreefoldFromConfig(common: Common, s: ThreefoldSection, ctx: ThreefoldFromConfigContext): Provisioner | undefined {
  if (!s.enabled || !s.mnemonic) return undefined
  const mnemonic = s.mnemonic
  const supervisor = createGridSupervisor(common.child('grid-worker'), {
    init: async () => ({
      mnemonic: mnemonic.reveal(),
      network: s.network,
      substrateUrl: s.substrateUrl,
      relayUrl: s.relayUrl,
      proxyUrl: s.proxyUrl,
      ...(s.graphqlUrl && { graphqlUrl: s.graphqlUrl }),
    }),
  })
  return createThreefoldProvisioner(common, {
    supervisor,
    proxyUrl: s.proxyUrl,
    catalogOffers: ctx.catalogOffers,
    tftUsd: cachedTftUsd(s.substrateUrl),
    minRunwayHours: s.minRunwayHours,
    tftBuffer: s.tftBuffer,
    farms: s.farms,
    nodeCooldownMs: s.nodeCooldownMs,
    runnerFlist: s.runnerFlist,
    stateDir: join(ctx.dataDir, 'threefold'),
    allowTestingSources: ctx.allowTestSources,
  })
}

/** USD per TFT as TFChain itself bills (`tftPriceModule`), read from `url` and kept 10 minutes. */
export function cachedTftUsd(url: string, read: () => Promise<Decimal> = async () => (await fetchTfchain({ url, timeoutMs: 15_000 })).usdPerTft): () => Promise<Decimal> {
  let rate: { at: number; value: Decimal } | undefined
  return async () => {
    if (!rate || Date.now() - rate.at > 600_000) rate = { at: Date.now(), value: await read() }
    return rate.value
  }
}
