import { describe, expect, test } from 'vitest'
import { BaseError } from './errors.js'
import { retry, sleep, withTimeout } from './retry.js'

describe('withTimeout', () => {
  test('default: returns the result', async () => {
    expect(await withTimeout('x', 1000, async () => 5)).toBe(5)
  })
  test('error: a timeout is a retryable TimeoutError and aborts the inner signal', async () => {
    let inner: AbortSignal | undefined
    const p = withTimeout('slow call', 20, (s) => {
      inner = s
      return new Promise(() => {})
    })
    await expect(p).rejects.toMatchObject({ code: 'TIMEOUT', retryable: true })
    expect(inner!.aborted).toBe(true)
  })
  test('error: the parent signal aborts the call', async () => {
    const c = new AbortController()
    const p = withTimeout('x', 10_000, () => new Promise(() => {}), c.signal)
    c.abort()
    await expect(p).rejects.toMatchObject({ code: 'ABORTED' })
  })
  test('behavior: no listener is left on a long-lived parent signal', async () => {
    const c = new AbortController()
    let added = 0
    let removed = 0
    const add = c.signal.addEventListener.bind(c.signal)
    const rem = c.signal.removeEventListener.bind(c.signal)
    c.signal.addEventListener = ((...a: Parameters<typeof add>) => (added++, add(...a))) as typeof add
    c.signal.removeEventListener = ((...a: Parameters<typeof rem>) => (removed++, rem(...a))) as typeof rem
    for (let i = 0; i < 20; i++) await withTimeout('x', 1000, async () => i, c.signal)
    expect(added).toBe(20)
    expect(removed).toBe(20)
  })
})

describe('retry', () => {
  test('behavior: retries retryable errors only, then gives up', async () => {
    let n = 0
    await expect(
      retry(async () => {
        n++
        throw new BaseError('flaky', { code: 'X', retryable: true })
      }, { attempts: 3, baseMs: 1 }),
    ).rejects.toThrow(/flaky/)
    expect(n).toBe(3)
    let m = 0
    await expect(
      retry(async () => {
        m++
        throw new BaseError('fatal', { code: 'Y' })
      }, { attempts: 3, baseMs: 1 }),
    ).rejects.toThrow(/fatal/)
    expect(m).toBe(1)
  })
  test('default: succeeds after a transient failure', async () => {
    let n = 0
    expect(await retry(async () => (++n < 2 ? Promise.reject(new BaseError('t', { code: 'T', retryable: true })) : n), { baseMs: 1 })).toBe(2)
  })
  test('error: sleep is abortable', async () => {
    const c = new AbortController()
    const p = sleep(10_000, c.signal)
    c.abort()
    await expect(p).rejects.toMatchObject({ code: 'ABORTED' })
  })
})
