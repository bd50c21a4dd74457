/**
 * One cloud API call: a per-attempt timeout, the caller's AbortSignal, and retries with exponential backoff for
 * throttling (honouring Retry-After) and transient failures (5xx, network). Decided by error class, never by text.
 */
import { AbortedError, isRetryable } from '../../core/errors.js'
import { sleep, withTimeout } from '../../core/retry.js'
import { CloudRateLimitedError } from './errors.js'

export type CallApiOptions = {
  signal: AbortSignal
  /** Per attempt, ms. Default 30_000. */
  timeoutMs?: number
  /** Attempts in total when throttled. Default 6. */
  attempts?: number
  /** Attempts in total for other retryable failures (network, 5xx). Default 3. */
  transientAttempts?: number
  /** First backoff, ms (doubled each time, ±20% jitter). Default 500. */
  baseMs?: number
  /** Backoff cap, ms. Default 20_000. */
  maxMs?: number
}

/** Run `fn` (which throws CloudRateLimitedError on throttling) with timeouts and backoff. */
export async function callApi<T>(what: string, fn: (signal: AbortSignal) => Promise<T>, o: CallApiOptions): Promise<T> {
  const attempts = o.attempts ?? 6
  const base = o.baseMs ?? 500
  const max = o.maxMs ?? 20_000
  for (let attempt = 1; ; attempt++) {
    if (o.signal.aborted) throw new AbortedError(what, o.signal.reason)
    try {
      return await withTimeout(what, o.timeoutMs ?? 30_000, fn, o.signal)
    } catch (err) {
      const limit = err instanceof CloudRateLimitedError ? attempts : (o.transientAttempts ?? 3)
      if (o.signal.aborted || attempt >= limit || !isRetryable(err)) throw err
      const backoff = Math.min(max, base * 2 ** (attempt - 1)) * (0.8 + Math.random() * 0.4)
      const hint = err instanceof CloudRateLimitedError && err.retryAfterMs !== undefined ? Math.min(err.retryAfterMs, 60_000) : 0
      await sleep(Math.max(backoff, hint), o.signal)
    }
  }
}

/** Parse an HTTP Retry-After header (seconds or an HTTP date) into ms. */
export function retryAfterMs(value: string | null | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000
  const t = Date.parse(value)
  return Number.isNaN(t) ? undefined : Math.max(0, t - now)
}
