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
}
