/**
 * Retry and timeout helpers. Retries are decided by error class (`isRetryable`), never by message text.
 */
import { AbortedError, TimeoutError, isRetryable } from './errors.js'

/** Resolve after `ms`, or reject with AbortedError when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new AbortedError('sleep', signal.reason))
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    const onAbort = () => {
      clearTimeout(t)
      reject(new AbortedError('sleep', signal?.reason))
    }
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}

/** An AbortSignal that aborts when `parent` does or after `ms` (with a TimeoutError reason). */
export function timeoutSignal(ms: number, parent?: AbortSignal): AbortSignal {
  const t = AbortSignal.timeout(ms)
  return parent ? AbortSignal.any([parent, t]) : t
}

/**
 * Run `fn` with a signal that aborts after `ms`; a timeout becomes a retryable TimeoutError.
 */
export async function withTimeout<T>(what: string, ms: number, fn: (signal: AbortSignal) => Promise<T>, parent?: AbortSignal): Promise<T> {
  if (parent?.aborted) throw new AbortedError(what, parent.reason)
  const controller = new AbortController()
  let timer: NodeJS.Timeout | undefined
  let onAbort: (() => void) | undefined
  try {
    return await Promise.race([
      fn(controller.signal),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          const err = new TimeoutError(what, ms)
          controller.abort(err)
          reject(err)
        }, ms)
        if (parent) {
          // one listener, removed in `finally`: long-lived parent signals must not accumulate listeners
          onAbort = () => {
            controller.abort(parent.reason)
            reject(new AbortedError(what, parent.reason))
          }
          parent.addEventListener('abort', onAbort, { once: true })
        }
      }),
    ])
  } finally {
    clearTimeout(timer)
    if (onAbort) parent?.removeEventListener('abort', onAbort)
  }
}

export type RetryOptions = {
  /** Attempts in total, including the first. Default 5. */
  attempts?: number
  /** First backoff in ms, doubled each time with ±20% jitter. Default 200. */
  baseMs?: number
  /** Backoff cap in ms. Default 10_000. */
  maxMs?: number
  signal?: AbortSignal
  /** Decide whether an error is worth another attempt. Default: `isRetryable`. */
  shouldRetry?: (err: unknown, attempt: number) => boolean
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void
}

/** Call `fn` until it succeeds, a non-retryable error is thrown, attempts run out, or the signal aborts. */
export async function retry<T>(fn: (attempt: number) => Promise<T>, o: RetryOptions = {}): Promise<T> {
  const attempts = o.attempts ?? 5
  const base = o.baseMs ?? 200
  const max = o.maxMs ?? 10_000
  const should = o.shouldRetry ?? ((err) => isRetryable(err))
  for (let attempt = 1; ; attempt++) {
    if (o.signal?.aborted) throw new AbortedError('retry', o.signal.reason)
    try {
      return await fn(attempt)
    } catch (err) {
      if (attempt >= attempts || !should(err, attempt) || o.signal?.aborted) throw err
      const delay = Math.min(max, base * 2 ** (attempt - 1)) * (0.8 + Math.random() * 0.4)
      o.onRetry?.(err, attempt, delay)
      await sleep(delay, o.signal)
    }
  }
}
