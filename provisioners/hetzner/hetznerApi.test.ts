import { describe, expect, test } from 'vitest'
import { isRetryable } from '../../core/errors.js'
import { CloudRateLimitedError } from '../cloud/errors.js'
import { TargetUnreachableError, failoverOf, type ProvisionError } from '../errors.js'
import { classifyHetznerError } from './hetznerApi.js'

/** Hetzner Cloud's error answers ({"error": {"code", "message"}} with the HTTP status) to our codes and classes. */
describe('classifyHetznerError', () => {
  test('error: each documented Hetzner code maps to its failover class and code', () => {
    const of = (status: number, code: string) => {
      const err = classifyHetznerError(status, code, 'recorded message', {}) as ProvisionError
      expect(err.meta.providerCode).toBe(code)
      return { code: err.code, failover: failoverOf(err), retryable: isRetryable(err) }
    }
    expect(of(412, 'resource_unavailable')).toEqual({ code: 'CLOUD_CAPACITY', failover: { kind: 'capacity', scope: 'offer' }, retryable: false })
    expect(of(403, 'resource_limit_exceeded')).toEqual({ code: 'CLOUD_QUOTA', failover: { kind: 'quota', scope: 'provider' }, retryable: false })
    expect(of(401, 'unauthorized')).toEqual({ code: 'CLOUD_AUTH', failover: { kind: 'auth', scope: 'provider' }, retryable: false })
    expect(of(403, 'forbidden')).toEqual({ code: 'CLOUD_AUTH', failover: { kind: 'auth', scope: 'provider' }, retryable: false })
    expect(of(503, 'maintenance')).toEqual({ code: 'CLOUD_REGION_UNAVAILABLE', failover: { kind: 'region-unavailable', scope: 'region' }, retryable: false })
    expect(of(422, 'location_disabled')).toEqual({ code: 'CLOUD_REGION_UNAVAILABLE', failover: { kind: 'region-unavailable', scope: 'region' }, retryable: false })
  })

  test('behavior: 429 is CLOUD_RATE_LIMITED with the reset hint; 5xx and conflicts are retryable; the rest is CLOUD_API_ERROR', () => {
    const limited = classifyHetznerError(429, 'rate_limit_exceeded', 'limit of 3600 requests per hour reached', { 'retry-after': '3' }) as CloudRateLimitedError
    expect({ code: limited.code, retryAfterMs: limited.retryAfterMs, retryable: isRetryable(limited) }).toEqual({ code: 'CLOUD_RATE_LIMITED', retryAfterMs: 3000, retryable: true })
    const reset = classifyHetznerError(429, 'rate_limit_exceeded', '', { 'ratelimit-reset': String(Math.floor(Date.now() / 1000) + 10) }) as CloudRateLimitedError
    expect(reset.retryAfterMs).toBeGreaterThan(8_000)
    for (const [status, code] of [[500, 'server_error'], [409, 'conflict'], [423, 'locked']] as const) {
      const err = classifyHetznerError(status, code, '', {})
      expect(err).toBeInstanceOf(TargetUnreachableError)
      expect(isRetryable(err)).toBe(true)
    }
    const bad = classifyHetznerError(422, 'invalid_input', 'invalid input in field name', {}) as ProvisionError
    expect({ code: bad.code, retryable: isRetryable(bad), status: bad.meta.status }).toEqual({ code: 'CLOUD_API_ERROR', retryable: false, status: 422 })
  })
})
