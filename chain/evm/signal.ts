/**
 * A short-lived AbortSignal that follows its parents until disposed. Per-call listeners then land on the short-lived
 * signal instead of piling up on the daemon's long-lived shutdown signal.
 */
export type ScopedSignal = { signal: AbortSignal; dispose(): void }

export function scopedSignal(...parents: (AbortSignal | undefined)[]): ScopedSignal {
  const controller = new AbortController()
  const live = parents.filter((s): s is AbortSignal => s !== undefined)
  const aborted = live.find((s) => s.aborted)
  if (aborted) {
    controller.abort(aborted.reason)
    return { signal: controller.signal, dispose: () => undefined }
  }
  const onAbort = (e: Event) => controller.abort((e.target as AbortSignal).reason)
  for (const s of live) s.addEventListener('abort', onAbort, { once: true })
  return {
    signal: controller.signal,
    dispose: () => {
      for (const s of live) s.removeEventListener('abort', onAbort)
    },
  }
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
