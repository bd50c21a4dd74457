/**
 * A short-lived AbortSignal that follows its parents until disposed, at O(1) per call: a parent carries at most one
 * listener however many scoped signals follow it (one fan-out per parent: a set of children, aborted together when
 * the parent aborts, and the listener removed again when the last child leaves). Ten thousand concurrent reads
 * under the daemon's shutdown signal thus add one listener to it, not ten thousand, and leave none behind.
 */
export type ScopedSignal = { signal: AbortSignal; dispose(): void }

type Fanout = { children: Set<AbortController>; onAbort: () => void }
const fanouts = new WeakMap<AbortSignal, Fanout>()

function join(parent: AbortSignal, child: AbortController): Fanout {
  let f = fanouts.get(parent)
  if (!f) {
    const children = new Set<AbortController>()
    const onAbort = () => {
      fanouts.delete(parent)
      for (const c of children) c.abort(parent.reason)
      children.clear()
    }
    f = { children, onAbort }
    fanouts.set(parent, f)
    parent.addEventListener('abort', onAbort, { once: true })
  }
  f.children.add(child)
  return f
}

function leave(parent: AbortSignal, f: Fanout, child: AbortController): void {
  f.children.delete(child)
  if (f.children.size === 0 && fanouts.get(parent) === f) {
    fanouts.delete(parent)
    parent.removeEventListener('abort', f.onAbort)
  }
}

export function scopedSignal(...parents: (AbortSignal | undefined)[]): ScopedSignal {
  const controller = new AbortController()
  const live = [...new Set(parents.filter((s): s is AbortSignal => s !== undefined))]
  const aborted = live.find((s) => s.aborted)
  if (aborted) {
    controller.abort(aborted.reason)
    return { signal: controller.signal, dispose: () => undefined }
  }
  const joined = live.map((p) => [p, join(p, controller)] as const)
  let disposed = false
  return {
    signal: controller.signal,
    dispose: () => {
      if (disposed) return
      disposed = true
      for (const [p, f] of joined) leave(p, f, controller)
    },
  }
}

/** Children currently following `parent` (for tests and metrics). */
export function scopedChildren(parent: AbortSignal): number {
  return fanouts.get(parent)?.children.size ?? 0
}

/** Run `fn` with a scoped signal that is disposed afterwards. */
export async function withScopedSignal<T>(parents: (AbortSignal | undefined)[], fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const s = scopedSignal(...parents)
  try {
    return await fn(s.signal)
  } finally {
    s.dispose()
  }
}
