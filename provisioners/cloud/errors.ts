/** Errors of the cloud targets, each with a stable code and, where placement should move on, a failover class. */
import { BaseError } from '../../core/errors.js'
import { ProvisionError, type FailoverClass } from '../errors.js'

/** The provider throttled us (HTTP 429, RequestLimitExceeded) and the retries with backoff ran out. */
export class CloudRateLimitedError extends BaseError {
  override name = 'CloudRateLimitedError'
  /** The provider's Retry-After / reset hint in ms, when it gave one. */
  readonly retryAfterMs: number | undefined
  constructor(provider: string, retryAfterMs?: number, cause?: unknown) {
    super(`${provider} API rate limit exceeded`, { code: 'CLOUD_RATE_LIMITED', retryable: true, reason: 'PROVISION_FAILED', cause, meta: { provider, retryAfterMs } })
    this.retryAfterMs = retryAfterMs
  }
}

/** A provider error that placement uses to fail over (capacity, quota, region, price, auth). */
export function failoverError(provider: string, f: FailoverClass, message: string, o: { providerCode?: string; details?: string[]; cause?: unknown } = {}): ProvisionError {
  const code = { capacity: 'CLOUD_CAPACITY', quota: 'CLOUD_QUOTA', 'region-unavailable': 'CLOUD_REGION_UNAVAILABLE', 'price-changed': 'CLOUD_PRICE_CHANGED', auth: 'CLOUD_AUTH' }[f.kind]
  return new ProvisionError(`${provider}: ${message}`, {
    code,
    reason: 'PROVISION_FAILED',
    // not worth retrying the same offer; placement tries the next candidate
    retryable: false,
    failover: f,
    details: o.details,
    cause: o.cause,
    meta: { provider, ...(o.providerCode ? { providerCode: o.providerCode } : {}) },
  })
}

/** Any other error answer of a provider API (a bad request, a conflict): not retryable. */
export function cloudApiError(provider: string, message: string, o: { providerCode?: string; status?: number; cause?: unknown; retryable?: boolean } = {}): ProvisionError {
  return new ProvisionError(`${provider}: ${message}`, {
    code: 'CLOUD_API_ERROR',
    reason: 'PROVISION_FAILED',
    retryable: o.retryable ?? false,
    cause: o.cause,
    meta: { provider, ...(o.providerCode ? { providerCode: o.providerCode } : {}), ...(o.status ? { status: o.status } : {}) },
  })
}
