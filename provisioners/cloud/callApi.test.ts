import { describe, expect, test } from 'vitest'
import { isRetryable } from '../../core/errors.js'
import { TargetUnreachableError } from '../errors.js'
import { callApi, retryAfterMs } from './callApi.js'
import { CloudRateLimitedError, cloudApiError } from './errors.js'

const signal = () => AbortSignal.timeout(10_000)

describe('callApi', () => {
  test('error: throttled on every attempt → CLOUD_RATE_LIMITED after `attempts` tries, retryable for the next tick', async () => {
    let calls = 0
    const err = await callApi(
      'ec2 DescribeInstances',
      async () => {
        calls++
        throw new CloudRateLimitedError('aws')
      },
      { signal: signal(), attempts: 3, baseMs: 1, maxMs: 5 },
    ).catch((e: unknown) => e as CloudRateLimitedError)
    expect(calls).toBe(3)
    expect({ code: err.code, retryable: isRetryable(err) }).toEqual({ code: 'CLOUD_RATE_LIMITED', retryable: true })
  })

  test("behavior: the provider's Retry-After is honoured before the next attempt", async () => {
    const at: number[] = []
    const v = await callApi(
      'hetzner GET /servers',
      async () => {
        at.push(Date.now())
        if (at.length === 1) throw new CloudRateLimitedError('hetzner', 300)
        return 'ok'
      },
      { signal: signal(), baseMs: 1 },
    )
    expect(v).toBe('ok')
    expect(at[1]! - at[0]!).toBeGreaterThanOrEqual(290)
  })

  test('behavior: transient failures are retried `transientAttempts` times; an API error is not retried', async () => {
    let n = 0
    const unreachable = await callApi('x', async () => {
      n++
      throw new TargetUnreachableError('hetzner API', undefined, ['503'])
    }, { signal: signal(), baseMs: 1, transientAttempts: 2 }).catch((e: unknown) => e as Error)
    expect(n).toBe(2)
    expect(unreachable).toBeInstanceOf(TargetUnreachableError)
    n = 0
    const bad = await callApi('x', async () => {
      n++
      throw cloudApiError('hetzner', 'invalid_input: name is taken', { status: 422 })
    }, { signal: signal(), baseMs: 1 }).catch((e: unknown) => e as ReturnType<typeof cloudApiError>)
    expect(n).toBe(1)
    expect(bad.code).toBe('CLOUD_API_ERROR')
  })

  test('default: Retry-After in seconds or as an HTTP date', () => {
    expect(retryAfterMs('2')).toBe(2000)
    expect(retryAfterMs(new Date(10_000).toUTCString(), 4_000)).toBe(6000)
    expect(retryAfterMs('soon')).toBeUndefined()
  })
})
