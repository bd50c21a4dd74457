/**
 * The quote of `blueprint-operator quote` and of the daemon's `/api/quote`: the cheapest offers for a spec among the
 * cached catalog and the own inventory, with their hourly breakdown (ThreeFold offers also in TFT per hour).
 */
import { formatBaseUnits, usd, type Decimal } from '../core/money.js'
import type { Offer, ProviderId, Quote } from '../core/offer.js'
import type { ResourceSpec } from '../core/spec.js'
import { enrichOffers, readCacheDir, type CachedSource } from './catalog.js'
import { SourceIds, type PricingConfig } from './config.js'
import { offerToJson } from './offerJson.js'
import { cheapest } from './select.js'
import { ownOffers } from './sources/own.js'
import { TFT_DECIMALS, usdToTftWithBuffer } from './sources/threefold.js'
import type { TftUsdInUse } from './sources/types.js'

export type QuoteOptions = { cacheDir?: string; providers?: ProviderId[] | undefined; maxCostPerHourUsd?: Decimal | undefined; top?: number }

export type QuoteFromCacheResult = {
  cacheDir: string
  /** Offers considered. */
  offers: number
  /** Cache files not used, with why. */
  problems: string[]
  /** Fallbacks behind the quoted offers (e.g. the configured ThreeFold policy instead of the chain's). */
  notes: string[]
} & (
  | { ok: true; quotes: Array<{ quote: Quote; tft: TftCost | undefined }> }
  | { ok: false; nearest: Array<{ offer: Offer; why: string[] }> }
)

/** A ThreeFold quote's hourly cost in TFT: what funding the twin takes, at the catalog's rate plus the buffer. */
export type TftCost = { perHour: string; baseUnitsPerHour: string; usdPerTft: string; buffer: number; resolvedAt: number; sources: string[] } | { unavailable: string }

function tftCost(q: Quote, rate: TftUsdInUse | undefined, buffer: number): TftCost | undefined {
  if (q.offer.provider !== 'threefold') return undefined
  if (!rate) return { unavailable: 'no TFT/USD rate in the catalog (see the threefold source notes)' }
  const units = usdToTftWithBuffer(q.breakdown.totalUsd, usd(rate.usdPerTft), buffer)
  return {
    perHour: formatBaseUnits(units, TFT_DECIMALS),
    baseUnitsPerHour: units.toString(),
    usdPerTft: rate.usdPerTft,
    buffer,
    resolvedAt: rate.resolvedAt,
    sources: rate.used.map((u) => u.source),
  }
}

/** The cheapest `top` offers for `spec` among the cache of `config` (or `o.cacheDir`) and the own inventory. */
export async function quoteFromCache(spec: ResourceSpec, config: PricingConfig, o: QuoteOptions = {}): Promise<QuoteFromCacheResult> {
  const dir = o.cacheDir ?? config.cacheDir
  const cache = await readCacheDir(dir, { sources: SourceIds.filter((id) => config.sources[id].enabled) })
  const own = ownOffers(config.own, { fetchedAt: Date.now(), limits: config.sanity }).offers
  const offers: Offer[] = enrichOffers([...own, ...cache.offers], config)
  const base = { cacheDir: dir, offers: offers.length, problems: cache.problems }
  if (!offers.length) return { ...base, ok: false, nearest: [], notes: [] }
  const res = cheapest(spec, offers, { providers: o.providers, maxCostPerHourUsd: o.maxCostPerHourUsd, top: o.top ?? 3 })
  if (!res.ok) return { ...base, ok: false, nearest: res.nearest, notes: [] }
  const quotes = [res.quote, ...res.alternatives]
  const bySource = new Map<string, CachedSource>(cache.sources.map((s) => [s.source, s]))
  const notes: string[] = []
  for (const source of new Set(quotes.map((q) => q.offer.source))) for (const n of bySource.get(source)?.notes ?? []) notes.push(`${source}: ${n}`)
  const rate = bySource.get('threefold')?.facts?.tftUsd
  return { ...base, ok: true, notes, quotes: quotes.map((q) => ({ quote: q, tft: tftCost(q, rate, config.tftUsd.buffer) })) }
}

/** A quote as JSON (decimal strings). */
export function quoteJson(q: Quote, tft: TftCost | undefined) {
  const b = q.breakdown
  return {
    offer: offerToJson(q.offer),
    spot: q.spot,
    replicas: q.replicas,
    breakdown: {
      hostUsd: b.hostUsd.toString(),
      gpuUsd: b.gpuUsd.toString(),
      storageUsd: b.storageUsd.toString(),
      ipv4Usd: b.ipv4Usd.toString(),
      perReplicaUsd: b.perReplicaUsd.toString(),
      totalUsd: b.totalUsd.toString(),
    },
    ...(tft && { tft }),
  }
}

