/**
 * Errors of the pricing module. Codes are stable:
 * - PRICE_SOURCE_FETCH: a source could not be fetched (HTTP status, network); retryable.
 * - PRICE_SOURCE_PARSE: a source answered something that is not its format; not retryable.
 * - PRICE_REFRESH_REJECTED: a refresh failed the sanity checks (empty, shrank too much); last-known-good kept.
 * - TFT_RATE_UNAVAILABLE: not enough agreeing TFT/USD sources.
 * - PRICING_USAGE: bad command-line arguments.
 */
import { BaseError } from '../core/errors.js'

export class PriceSourceFetchError extends BaseError {
  override name = 'PriceSourceFetchError'
  constructor(source: string, url: string, detail: string, p: { status?: number; cause?: unknown; retryable?: boolean } = {}) {
    super(`fetching price source ${source} failed: ${detail}`, {
      code: 'PRICE_SOURCE_FETCH',
      retryable: p.retryable ?? (p.status === undefined || p.status >= 500 || p.status === 429),
      cause: p.cause,
      details: [`url: ${url}`],
      meta: { source, status: p.status },
    })
  }
}

export class PriceSourceParseError extends BaseError {
  override name = 'PriceSourceParseError'
  constructor(source: string, detail: string, cause?: unknown) {
    super(`price source ${source} returned data that is not its format: ${detail}`, {
      code: 'PRICE_SOURCE_PARSE',
      retryable: false,
      cause,
      meta: { source },
    })
  }
}

export class PriceRefreshRejectedError extends BaseError {
  override name = 'PriceRefreshRejectedError'
  constructor(source: string, detail: string) {
    super(`refresh of ${source} rejected, last-known-good kept: ${detail}`, {
      code: 'PRICE_REFRESH_REJECTED',
      retryable: true,
      meta: { source },
    })
  }
}

export class TftRateError extends BaseError {
  override name = 'TftRateError'
  constructor(detail: string, details: string[] = []) {
    super(`TFT/USD rate unavailable: ${detail}`, { code: 'TFT_RATE_UNAVAILABLE', retryable: true, details })
  }
}

export class PricingUsageError extends BaseError {
  override name = 'PricingUsageError'
  constructor(detail: string) {
    super(detail, { code: 'PRICING_USAGE', retryable: false })
  }
}
