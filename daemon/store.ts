/**
 * The state store: lowdb over a JSON file written durably (temp file, fsync, rename, fsync of the folder),
 * with updates serialized so a write never interleaves another.
 */
import { mkdirSync, openSync, fsyncSync, closeSync } from 'node:fs'
import { readFile, rename, open } from 'node:fs/promises'
import { dirname } from 'node:path'
import { Low, type Adapter } from 'lowdb'
import type { Common } from '../core/common.js'
import { BaseError } from '../core/errors.js'
import { emptyState, type State } from './state.js'

class DurableJsonFile<T> implements Adapter<T> {
  constructor(private readonly file: string) {}
  async read(): Promise<T | null> {
    let text: string
    try {
      text = await readFile(this.file, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
      throw err
    }
    try {
      return JSON.parse(text) as T
    } catch (err) {
      throw new BaseError(`state file ${this.file} is not valid JSON`, {
        code: 'STATE_CORRUPT',
        details: ['restore it from a backup, or move it aside to rebuild state from the chain'],
        cause: err,
      })
    }
  }
  async write(data: T): Promise<void> {
    const tmp = `${this.file}.tmp`
    const fh = await open(tmp, 'w', 0o600)
    try {
      await fh.writeFile(JSON.stringify(data, null, 1))
      await fh.sync()
    } finally {
      await fh.close()
    }
    await rename(tmp, this.file)
    const d = openSync(dirname(this.file), 'r')
    try {
      fsyncSync(d)
    } finally {
      closeSync(d)
    }
  }
}

export type Store = {
  /** The current state (read-only view; change it through `update`). */
  read(): Readonly<State>
  /** Apply `fn` to a copy of the state and persist it; the in-memory state changes only once the write succeeded. */
  update<T>(fn: (draft: State) => T): Promise<T>
  close(): Promise<void>
}

export type CreateStoreParameters = { file: string; operatorId: string; chainId: number }

export async function createStore(common: Common, p: CreateStoreParameters): Promise<Store> {
  mkdirSync(dirname(p.file), { recursive: true })
  const adapter = new DurableJsonFile<State>(p.file)
  const db = new Low<State>(adapter, emptyState(p.operatorId, p.chainId))
  await db.read()
  if (db.data.operatorId !== p.operatorId || db.data.chainId !== p.chainId) {
    throw new BaseError(`state file ${p.file} belongs to operator ${db.data.operatorId} on chain ${db.data.chainId}`, {
      code: 'STATE_MISMATCH',
      details: [`this daemon is operator ${p.operatorId} on chain ${p.chainId}; point operator.data_dir elsewhere`],
    })
  }
  // group commit: updates that arrive while a write is on its way are applied in order to one draft and written
  // together, so N services reconciled at once cost one write, not N
  type Pending = { fn: (draft: State) => unknown; resolve: (v: unknown) => void; reject: (e: unknown) => void }
  let pending: Pending[] = []
  let flushing: Promise<void> | undefined
  const log = common.logger
  const flush = async () => {
    while (pending.length) {
      const batch = pending
      pending = []
      let draft = structuredClone(db.data)
      const applied: Array<{ u: Pending; out: unknown }> = []
      for (const u of batch) {
        try {
          applied.push({ u, out: u.fn(draft) })
        } catch (err) {
          u.reject(err)
          // undo its partial changes: rebuild from the committed state and replay the updates before it
          draft = structuredClone(db.data)
          for (const a of applied) a.out = a.u.fn(draft)
        }
      }
      if (!applied.length) continue
      try {
        await adapter.write(draft)
      } catch (err) {
        log.error({ err }, 'state write failed')
        const e = new BaseError('could not persist state', { code: 'STATE_WRITE_FAILED', retryable: true, cause: err })
        for (const a of applied) a.u.reject(e)
        continue
      }
      // readers see the new state only once it is on disk
      db.data = draft
      for (const a of applied) a.u.resolve(a.out)
    }
  }
  // an update that arrives after the flush loop saw an empty queue, but before the flush settled, starts another
  const kick = (): void => {
    flushing ??= flush().finally(() => {
      flushing = undefined
      if (pending.length) kick()
    })
  }
  return {
    read: () => db.data,
    update<T>(fn: (draft: State) => T): Promise<T> {
      const done = new Promise<T>((resolve, reject) => pending.push({ fn, resolve: resolve as (v: unknown) => void, reject }))
      kick()
      return done
    },
    async close() {
      while (flushing) await flushing
    },
  }
}
