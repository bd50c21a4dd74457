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
 * Emit every transition newly appended to a service's history as a stage event, in order: the services each commit
 * changed (this daemon's or, on a shared store, another's) are looked at once per event-loop turn — never all of them.
 * Returns `store` itself.
 */
export function watchStages(store: Store, bus: EventBus): Store {
  const seen = new Map<string, number>()
  for (const [id, s] of Object.entries(store.read().services)) seen.set(id, s.history.length)
  const changed = new Set<string>()
  const scan = () => {
    const services = store.read().services
    for (const id of changed) {
      const s = services[id]
      // archived services leave the state: forget them
      if (!s) {
        seen.delete(id)
        continue
      }
      // a record replaced under the same id (a request reused after a deep reorg) starts its history again
      let n = seen.get(id) ?? 0
      if (s.history.length < n) n = 0
      for (const h of s.history.slice(n))
        bus.emit({ type: 'stage', serviceId: id, from: h.from, to: h.to, cause: h.cause, at: h.at, ...(h.detail && { detail: h.detail }), ...(s.reason && { reason: s.reason }) })
      seen.set(id, s.history.length)
    }
    changed.clear()
  }
  store.onCommitted((ids) => {
    if (!changed.size) setImmediate(scan)
    for (const id of ids) changed.add(id)
  })
  return store
}
