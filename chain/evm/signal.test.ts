import { getEventListeners } from 'node:events'
import { describe, expect, test } from 'vitest'
import { scopedChildren, scopedSignal, withScopedSignal } from './signal.js'

const listeners = (s: AbortSignal) => getEventListeners(s, 'abort').length

describe('scopedSignal', () => {
  test('behavior: 10,000 concurrent scoped calls put one listener on the root and leave none behind', async () => {
    const root = new AbortController()
    const other = new AbortController()
    let release!: () => void
    const gate = new Promise<void>((r) => (release = r))
    let peak = 0
    const calls = Array.from({ length: 10_000 }, (_, i) =>
      withScopedSignal([i % 2 ? undefined : other.signal, root.signal], async (s) => {
        // nested scoping, as the escrow client does per attempt
        return withScopedSignal([s], async (one) => {
          peak = Math.max(peak, listeners(root.signal))
          await gate
          return one.aborted
        })
      }),
    )
    expect(scopedChildren(root.signal)).toBe(10_000)
    expect(listeners(root.signal)).toBe(1)
    expect(listeners(other.signal)).toBe(1)
    release()
    expect(await Promise.all(calls)).toEqual(Array(10_000).fill(false))
    expect(peak).toBe(1)
    expect(listeners(root.signal)).toBe(0)
    expect(listeners(other.signal)).toBe(0)
    expect(scopedChildren(root.signal)).toBe(0)
  })

  test('behavior: shutdown aborts all 10,000 in-flight calls with its reason, and nothing stays attached', async () => {
    const root = new AbortController()
    const calls = Array.from({ length: 10_000 }, () =>
      withScopedSignal([undefined, root.signal], (s) => new Promise<unknown>((resolve) => s.addEventListener('abort', () => resolve(s.reason), { once: true }))),
    )
    expect(listeners(root.signal)).toBe(1)
    root.abort(new Error('shutdown'))
    const reasons = await Promise.all(calls)
    expect(reasons.every((r) => (r as Error).message === 'shutdown')).toBe(true)
    expect(listeners(root.signal)).toBe(0)
    expect(scopedChildren(root.signal)).toBe(0)
    // after shutdown, new scopes start aborted
    const late = scopedSignal(root.signal)
    expect(late.signal.aborted).toBe(true)
    late.dispose()
  })

  test('behavior: any parent aborts the child; disposing twice is harmless; a disposed child no longer follows', () => {
    const a = new AbortController()
    const b = new AbortController()
    const s = scopedSignal(a.signal, b.signal)
    b.abort('b')
    expect(s.signal.aborted).toBe(true)
    expect(s.signal.reason).toBe('b')
    s.dispose()
    s.dispose()
    expect(listeners(a.signal)).toBe(0)
    const t = scopedSignal(a.signal)
    t.dispose()
    a.abort('a')
    expect(t.signal.aborted).toBe(false)
  })
})
