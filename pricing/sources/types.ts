/**
 * Shared shapes of the pure parsers: offers kept, rows rejected with the reason.
 */
import type { Decimal } from 'decimal.js'
import type { Offer } from '../../core/offer.js'
import type { SanityLimits } from '../config.js'

/** A row a parser did not turn into an offer: `line` for text formats, `row` (a path or id) for JSON. */
export type Rejected = { line?: number; row?: string; why: string }

export type ParseResult = { offers: Offer[]; rejected: Rejected[] }

export type ParseOptions = {
  /** When the text was fetched, ms since epoch (stamped on each offer). */
  fetchedAt: number
  /** Sanity limits; defaults to `defaultPricingConfig`'s. */
  limits?: SanityLimits
}

/**
 * An offer whose source prices the accelerator apart from the host (GCP accelerator rows, ThreeFold GPU fee);
 * `gpuHourlyUsd` is already included in `hourlyUsd`, and is shown apart in a quote's breakdown.
 */
export type OfferWithGpuPart = Offer & {
  gpuHourlyUsd?: Decimal
  gpuSpotHourlyUsd?: Decimal
  /** Largest storage the offer can hold (ThreeFold nodes' free SSD), GiB; absent = no limit known. */
  maxStorageGiB?: number
  /** Why the offer cannot have a public IPv4 (ThreeFold: its farm has none free); absent = it can, or unknown. */
  ipv4Unavailable?: string
  /** Public IPv4 addresses free where the offer runs (ThreeFold: on its farm), one per replica; absent = unknown. */
  ipv4Free?: number
}

/** The TFChain pricing policy a ThreeFold refresh priced its offers with. */
export type PolicyInUse = {
  id: number
  /** `tfchain` when read from the node, `config` when configured (no node, or the read failed). */
  from: 'tfchain' | 'config'
  cu: number
  su: number
  nu: number
  ipu: number
  discountForDedicationNodes: number
  /** Runtime spec version of the node read. */
  specVersion?: number
}

/** A TFT/USD rate as resolved at a refresh; decimals as strings (JSON-safe, as kept in the cache file). */
export type TftUsdInUse = {
  usdPerTft: string
  used: Array<{ source: string; usdPerTft: string }>
  discarded: Array<{ source: string; usdPerTft?: string; why: string }>
  /** When it was resolved, ms since epoch. */
  resolvedAt: number
}

/** What a refresh learned besides its offers, shown in the catalog status and kept in the cache file. */
export type SourceFacts = {
  policy?: PolicyInUse
  tftUsd?: TftUsdInUse
}

/** A loader's answer: offers and rejected rows, plus degradations that did not fail the refresh and its facts. */
export type LoadResult = ParseResult & {
  /** Fallbacks taken and side readings that failed (e.g. "priced with the configured policy: ..."). */
  notes?: string[]
  facts?: SourceFacts
}
