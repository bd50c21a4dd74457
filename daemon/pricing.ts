/**
 * The daemon's view of public prices: the catalog of the sources named in `[pricing] sources`, refreshed on their
 * schedules with last-known-good kept, so operators see fresh market prices (`/api/pricing`, `/api/quote`, `quote`) beside the
 * prices of their own targets.
 */
import { readFileSync } from 'node:fs'
import type { Common } from '../core/common.js'
import type { OperatorConfig } from './config.js'
import { ConfigError } from './config.js'
import { createCatalog, type Catalog } from '../pricing/catalog.js'
import { defaultPricingConfig, SourceIds, type PricingConfig } from '../pricing/config.js'
import { quoteFromCache, type QuoteFromCacheResult } from '../pricing/quote.js'
import type { ResourceSpec } from '../core/spec.js'

/** The pricing config derived from the operator's TOML; unknown source names are a ConfigError with their path. */
export function pricingConfigOf(config: OperatorConfig): PricingConfig {
  const pc = defaultPricingConfig(config.pricing.cacheDir)
  const problems = config.pricing.sources
    .map((s, i) => ({ s, i }))
    .filter(({ s }) => !(SourceIds as readonly string[]).includes(s))
    .map(({ s, i }) => ({ path: `pricing.sources[${i}]`, message: `got ${JSON.stringify(s)}, expected one of ${SourceIds.join(', ')}` }))
  if (problems.length) throw new ConfigError('<config>', problems)
  for (const id of SourceIds) pc.sources[id].enabled = config.pricing.sources.includes(id)
  pc.eurUsd = config.pricing.eurUsd.toFixed()
  if (config.pricing.tfchainUrl) pc.tftUsd.tfchainUrl = config.pricing.tfchainUrl
  if (config.pricing.tfchainPricingPolicy !== undefined) pc.threefold.pricingPolicyId = config.pricing.tfchainPricingPolicy
  if (config.pricing.tfchainTypes) {
    try {
      pc.tftUsd.tfchainTypes = JSON.parse(readFileSync(config.pricing.tfchainTypes, 'utf8')) as Record<string, unknown>
    } catch (err) {
      throw new ConfigError('<config>', [{ path: 'pricing.tfchain_types', message: `cannot read a JSON types file: ${(err as Error).message.split('\n')[0]}` }])
    }
  }
  // the operator's own targets are offers too (what `quote --config` compares the clouds with)
  const local = config.providers.local
  if (local?.enabled) pc.own.push({ name: 'local', region: local.region, vcpu: local.vcpu, memoryGiB: local.memoryGiB, storageGiB: local.storageGiB, hourlyUsd: local.hourlyUsd.toFixed() })
  for (const h of config.providers.ssh?.hosts ?? []) pc.own.push({ name: `ssh:${h.name}`, region: h.region, vcpu: h.vcpu, memoryGiB: h.memoryGiB, storageGiB: h.storageGiB, hourlyUsd: h.hourlyUsd.toFixed() })
  for (const c of config.providers.kubernetes?.clusters ?? []) pc.own.push({ name: `k8s:${c.name}`, region: c.region, vcpu: c.vcpu, memoryGiB: c.memoryGiB, storageGiB: c.storageGiB, hourlyUsd: c.hourlyUsd.toFixed() })
  return pc
}

/** Start the catalog when any public source is enabled; undefined otherwise. */
export async function startCatalog(common: Common, config: OperatorConfig): Promise<Catalog | undefined> {
  if (!config.pricing.sources.length) return undefined
  const catalog = createCatalog(common, pricingConfigOf(config))
  await catalog.start()
  return catalog
}

export type QuoteQuery = { cpu: number; memory: number; storage?: number; gpu?: { count: number; model?: string }; regions?: string[]; replicas?: number; spot?: boolean; top?: number }

/**
 * The quote `blueprint-operator quote --config` prints, for a query: the cheapest offers of the operator's cache and
 * own inventory (pricing/quote.ts).
 */
export async function quoteForConfig(config: OperatorConfig, q: QuoteQuery): Promise<QuoteFromCacheResult> {
  const replicas = q.replicas ?? 1
  const spec: ResourceSpec = {
    vcpu: q.cpu,
    memoryGiB: q.memory,
    storageGiB: q.storage ?? 0,
    gpu: q.gpu ?? { count: 0 },
    replicas,
    minReplicas: replicas,
    maxReplicas: replicas,
    regions: q.regions ?? [],
    spotAllowed: q.spot ?? false,
    highAvailability: false,
    ports: [],
    tier: 'basic',
  }
  return quoteFromCache(spec, pricingConfigOf(config), { top: q.top ?? 3 })
}
