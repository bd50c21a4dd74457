/**
 * The daemon's event bus for observers (the dashboard's server-sent events, webhooks): stage changes of services,
 * seen in the store after each write, and ticks. Emitting never blocks and a failing listener never reaches the
 * emitter.
 */
import type { Logger } from '../core/common.js'
import type { ServiceState } from './state.js'
import type { Store } from './store.js'

export type StageEvent = {
  type: 'stage'
  serviceId: string
  from: ServiceState | null
  to: ServiceState
  cause: string
  at: string
  detail?: string
  reason?: string
}
export type TickEvent = { type: 'tick'; at: string; seconds?: number }
export type DaemonEvent = StageEvent | TickEvent

export type EventBus = {
  emit(e: DaemonEvent): void
  /** Listen to every event; returns the unsubscribe function. */
  subscribe(fn: (e: DaemonEvent) => void): () => void
  listeners(): number
}

export function createEventBus(log: Logger): EventBus {
  const fns = new Set<(e: DaemonEvent) => void>()
  return {
    emit(e) {
      for (const fn of fns) {
        try {
          fn(e)
        } catch (err) {
          log.warn({ err, event: e.type }, 'event listener failed')
        }
      }
    },
    subscribe(fn) {
      fns.add(fn)
      return () => void fns.delete(fn)
    },
    listeners: () => fns.size,
  }
}

/**
 * The store, unchanged, except that after its writes settle every transition newly appended to a service's history
 * is emitted as a stage event (in order; at most one scan per event-loop turn, however many updates resolved).
 */
export function watchStages(store: Store, bus: EventBus): Store {
  const seen = new Map<string, number>()
  for (const [id, s] of Object.entries(store.read().services)) seen.set(id, s.history.length)
  let scheduled = false
  const scan = () => {
    scheduled = false
    const services = store.read().services
    for (const [id, s] of Object.entries(services)) {
      const n = seen.get(id) ?? 0
      if (s.history.length <= n) continue
      for (const h of s.history.slice(n))
        bus.emit({ type: 'stage', serviceId: id, from: h.from, to: h.to, cause: h.cause, at: h.at, ...(h.detail && { detail: h.detail }), ...(s.reason && { reason: s.reason }) })
      seen.set(id, s.history.length)
    }
    // archived services leave the state: forget them
    if (seen.size > Object.keys(services).length) for (const id of seen.keys()) if (!services[id]) seen.delete(id)
  }
  return {
    ...store,
    read: () => store.read(),
    close: () => store.close(),
    async update(fn) {
      try {
        return await store.update(fn)
      } finally {
        if (!scheduled) {
          scheduled = true
          setImmediate(scan)
        }
      }
    },
  }
}
