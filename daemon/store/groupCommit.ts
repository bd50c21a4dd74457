/**
 * Group commit over an engine: updates that arrive while a write is on its way are applied in order, each to its own
 * copy-on-write draft over the ones before it, and written together in ONE transaction of only the changed rows.
 * An update that throws is dropped alone; a failed write fails the whole batch and leaves the read model as it was;
 * readers see a change only once it is committed. When another daemon wrote the same rows first, its rows are
 * taken into the read model and the batch is replayed on them.
 */
import type { Common } from '../../core/common.js'
import type { State } from '../state.js'
import { committedView, createDraft, createProcessedIndex, emptyChanges, isEmpty, mergeChanges, overlayView, type Changes } from './draft.js'
import { writeFailed } from './errors.js'
import type { Engine, Store } from './types.js'

const MAX_REPLAYS = 8

/** A Store over `engine`, its read model loaded now. */
export type OpenedStore = Store & {
  /**
   * Take rows committed elsewhere into the read model: `load` runs between two group commits (never between a write
   * and its taking effect), and its changes are applied as committed state.
   */
  sync(load: () => Promise<Changes>): Promise<void>
}

export async function openStore(common: Common, engine: Engine): Promise<OpenedStore> {
  const log = common.logger
  const state = await engine.load()
  const index = createProcessedIndex(state.processed)
  const committed = committedView(state, index)
  const meta = { version: 1 as const, operatorId: state.operatorId, chainId: state.chainId }

  const committedListeners = new Set<(serviceIds: readonly string[]) => void>()
  // the read model changes here only, with rows that are committed
  const applyCommitted = (c: Changes): void => {
    for (const [id, rec] of c.services) {
      if (rec) state.services[id] = rec
      else delete state.services[id]
    }
    for (const [id, b] of c.processed) {
      if (b === null) delete state.processed[id]
      else {
        state.processed[id] = b
        index.add(id, b)
      }
    }
    if (c.cursor) {
      if (c.cursor.value) state.cursor = Object.isFrozen(c.cursor.value) ? c.cursor.value : Object.freeze({ ...c.cursor.value })
      else delete state.cursor
    }
    if (c.processed.size) index.compact(state.processed)
    if (c.services.size && committedListeners.size) {
      const ids = [...c.services.keys()]
      for (const fn of committedListeners) {
        try {
          fn(ids)
        } catch (err) {
          log.error({ err }, 'a commit listener threw')
        }
      }
    }
  }

  type Pending = { fn: (draft: State) => unknown; resolve: (v: unknown) => void; reject: (e: unknown) => void; failed?: boolean }
  type Sync = { load: () => Promise<Changes>; resolve: () => void; reject: (e: unknown) => void }
  let pending: Pending[] = []
  let syncs: Sync[] = []
  let flushing: Promise<void> | undefined
  let closed = false

  const commitBatch = async (batch: Pending[]): Promise<void> => {
    for (let replay = 0; ; replay++) {
      const changes = emptyChanges()
      const view = overlayView(committed, changes)
      const applied: Array<{ u: Pending; out: unknown }> = []
      for (const u of batch) {
        if (u.failed) continue
        const d = createDraft(view, meta)
        try {
          const out = u.fn(d.draft)
          mergeChanges(changes, d.changes) // its partial changes never reach the batch when it throws
          applied.push({ u, out })
        } catch (err) {
          u.failed = true
          u.reject(err)
        }
      }
      if (!applied.length) return
      if (isEmpty(changes)) {
        for (const a of applied) a.u.resolve(a.out)
        return
      }
      let conflicts
      try {
        conflicts = await engine.write(changes, state)
        if (conflicts) {
          if (replay >= MAX_REPLAYS) throw new Error(`rows kept changing under this daemon (${conflicts.services.length + conflicts.processed.length} after ${replay} replays)`)
          // another daemon wrote these rows first: take its rows, then replay the batch on them
          log.debug({ services: conflicts.services.length, processed: conflicts.processed.length }, 'rows written elsewhere first; replaying the batch')
          applyCommitted(await engine.reload(conflicts))
          continue
        }
      } catch (err) {
        log.error({ err }, 'state write failed')
        const e = writeFailed(err)
        for (const a of applied) a.u.reject(e)
        return
      }
      applyCommitted(changes)
      for (const a of applied) a.u.resolve(a.out)
      return
    }
  }

  const flush = async () => {
    while (pending.length || syncs.length) {
      for (const s of syncs.splice(0)) {
        try {
          applyCommitted(await s.load())
          s.resolve()
        } catch (err) {
          s.reject(err)
        }
      }
      const batch = pending
      pending = []
      if (batch.length) await commitBatch(batch)
    }
  }
  // an update that arrives after the flush loop saw an empty queue, but before the flush settled, starts another
  const kick = (): void => {
    // started once the promise chains of this turn of the event loop have run (setImmediate, not the next
    // microtask): updates issued together join one batch, also those issued one per settled write (the follower's
    // deliveries in flight, each queued as the one before it resolves), so they share one commit and one fsync
    flushing ??= new Promise<void>((resolve) => setImmediate(resolve)).then(flush).finally(() => {
      flushing = undefined
      if (pending.length || syncs.length) kick()
    })
  }

  return {
    engine: engine.name,
    ...(engine.coordination && { coordination: engine.coordination }),
    read: () => state,
    onCommitted(fn) {
      committedListeners.add(fn)
      return () => void committedListeners.delete(fn)
    },
    update<T>(fn: (draft: State) => T): Promise<T> {
      if (closed) return Promise.reject(writeFailed(new Error('the store is closed')))
      const done = new Promise<T>((resolve, reject) => pending.push({ fn, resolve: resolve as (v: unknown) => void, reject }))
      kick()
      return done
    },
    sync(load) {
      if (closed) return Promise.resolve()
      const done = new Promise<void>((resolve, reject) => syncs.push({ load, resolve, reject }))
      kick()
      return done
    },
    async close() {
      while (flushing) await flushing
      if (closed) return
      closed = true
      await engine.close()
    },
  }
}
