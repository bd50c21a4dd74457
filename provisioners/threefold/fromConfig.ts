/**
 * `[providers.threefold]` → the grid target: a supervised grid worker (the mnemonic resolved from its secret
 * reference at every worker start and sent over IPC), the provisioner, and a cloud target over the catalog's
 * threefold offers. The TFT/USD rate for the runway check is the chain's own (`tftPriceModule`), read by the daemon.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Decimal } from 'decimal.js'
import type { Common } from '../../core/common.js'
import { BaseError } from '../../core/errors.js'
import type { Offer } from '../../core/offer.js'
import type { Provisioner } from '../types.js'
import type { ThreefoldSection } from './config.js'
import { createGridSupervisor } from './createGridSupervisor.js'
import { createThreefoldProvisioner } from './createThreefoldProvisioner.js'

export type ThreefoldFromConfigContext = {
  dataDir: string
  allowTestSources: boolean
  catalogOffers(): readonly Offer[]
  /** USD per TFT as TFChain bills (the daemon reads it from `substrate_url`: daemon/tftUsd.ts). */
  tftUsd(): Promise<Decimal>
  /** The worker the supervisor forks; default the shipped worker/gridWorker.cjs (tests give a fake one). */
  workerPath?: string
}

/** The provisioner of an enabled section, or undefined when the section is disabled. */
export function createThreefoldFromConfig(common: Common, s: ThreefoldSection, ctx: ThreefoldFromConfigContext): Provisioner | undefined {
  if (!s.enabled || !s.mnemonic) return undefined
  const mnemonic = s.mnemonic
  const supervisor = createGridSupervisor(common.child('grid-worker'), {
    ...(ctx.workerPath && { workerPath: ctx.workerPath }),
    init: async () => ({
      mnemonic: mnemonic.reveal(),
      network: s.network,
      substrateUrl: s.substrateUrl,
      relayUrl: s.relayUrl,
      proxyUrl: s.proxyUrl,
      ...(s.graphqlUrl && { graphqlUrl: s.graphqlUrl }),
      // the twin the daemon follows: a worker whose mnemonic is another twin's is refused (GRID_TWIN_MISMATCH)
      ...(s.twinId !== undefined && { twinId: s.twinId }),
    }),
  })
  return createThreefoldProvisioner(common, {
    supervisor,
    proxyUrl: s.proxyUrl,
    catalogOffers: ctx.catalogOffers,
    tftUsd: ctx.tftUsd,
    minRunwayHours: s.minRunwayHours,
    tftBuffer: s.tftBuffer,
    farms: s.farms,
    nodeCooldownMs: s.nodeCooldownMs,
    runnerFlist: s.runnerFlist,
    stateDir: join(ctx.dataDir, 'threefold'),
    allowTestingSources: ctx.allowTestSources,
    bootTimeoutMs: s.bootTimeoutMs,
  })
}

/** The section's `tfchain_types` file, parsed (undefined when not set). */
export function tfchainTypesOf(s: Pick<ThreefoldSection, 'tfchainTypes'>): Record<string, unknown> | undefined {
  if (!s.tfchainTypes) return undefined
  try {
    return JSON.parse(readFileSync(s.tfchainTypes, 'utf8')) as Record<string, unknown>
  } catch (err) {
    throw new BaseError('[providers.threefold] tfchain_types is not a readable JSON types file', { code: 'CONFIG_INVALID', cause: err, meta: { path: s.tfchainTypes } })
  }
}
