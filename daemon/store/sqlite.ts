/**
 * The embedded engine: SQLite through better-sqlite3, in WAL mode with `synchronous = FULL`: every commit fsyncs the
 * WAL, so a transaction reported committed survives a power cut. (NORMAL would only fsync at checkpoints: still never
 * corrupt, but the last commits could vanish after a crash — and an intent that vanishes after its side effect ran,
 * say a refund sent, breaks "intent before side effect". Group commit keeps FULL's one fsync per batch cheap.)
 * `[store] sqlite_synchronous = "normal"` trades that for updates ~40x cheaper on a slow disk, for operators who
 * accept re-checking the chain after a power cut.
 */
import { chmodSync, closeSync, mkdirSync, openSync } from 'node:fs'
import { dirname } from 'node:path'
import Database from 'better-sqlite3'
import type { Common } from '../../core/common.js'
import { faultPoint } from '../../core/faults.js'
import { emptyState, type ServiceRecord, type State } from '../state.js'
import { emptyChanges, type Changes } from './draft.js'
import { stateCorrupt, stateMismatch } from './errors.js'
import type { Owner } from './importJson.js'
import { migrate } from './migrations.js'
import type { Engine } from './types.js'

export type OpenSqliteParameters = {
  file: string
  owner: Owner
  /** State to write into a database that has none yet (the import of an older state file). */
  seed?: () => State | undefined
  /** `full` (default): every commit fsyncs. `normal`: commits survive a crash of the daemon, not of the machine. */
  synchronous?: 'full' | 'normal'
}

const CORRUPT = new Set(['SQLITE_NOTADB', 'SQLITE_CORRUPT', 'SQLITE_CORRUPT_VTAB', 'SQLITE_CORRUPT_SEQUENCE', 'SQLITE_CORRUPT_INDEX'])
const isCorrupt = (err: unknown) => CORRUPT.has((err as { code?: string }).code ?? '')

/** Open (creating and migrating as needed) the SQLite database at `file`; `seeded` says whether `seed` was written. */
export async function openSqlite(common: Common, p: OpenSqliteParameters): Promise<{ engine: Engine; seeded: boolean }> {
  mkdirSync(dirname(p.file), { recursive: true, mode: 0o700 })
  // the state is the operator's (ledgers, intents, the customers' services): readable by the daemon's user only;
  // SQLite gives the -wal and -shm files the database file's mode
  closeSync(openSync(p.file, 'a', 0o600))
  chmodSync(p.file, 0o600)
  let db: Database.Database
  try {
    db = new Database(p.file)
    db.pragma('journal_mode = WAL')
    db.pragma(`synchronous = ${p.synchronous === 'normal' ? 'NORMAL' : 'FULL'}`)
    db.pragma('busy_timeout = 5000')
  } catch (err) {
    if (isCorrupt(err)) throw stateCorrupt(`state database ${p.file} is not a SQLite database or is damaged`, err)
    throw err
  }
  let seeded = false
  try {
    db.exec('BEGIN IMMEDIATE')
    try {
      await migrate(
        {
          exec: async (sql) => void db.exec(sql),
          versions: async () => db.prepare('SELECT version FROM schema_migrations').pluck().all() as number[],
          record: async (v, at) => void db.prepare('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)').run(v, at),
        },
        'sqlite',
        p.file,
      )
      const meta = new Map(db.prepare('SELECT key, value FROM meta').raw().all() as Array<[string, string]>)
      if (!meta.has('operator_id')) {
        const seed = p.seed?.()
        const setMeta = db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value')
        setMeta.run('operator_id', p.owner.operatorId)
        setMeta.run('chain_id', String(p.owner.chainId))
        if (seed) {
          writeChanges(db, seedChanges(seed))
          seeded = true
        }
      } else {
        const found = { operatorId: meta.get('operator_id')!, chainId: Number(meta.get('chain_id')) }
        if (found.operatorId !== p.owner.operatorId || found.chainId !== p.owner.chainId) throw stateMismatch(`state database ${p.file}`, found, p.owner)
      }
      db.exec('COMMIT')
    } catch (err) {
      if (db.inTransaction) db.exec('ROLLBACK')
      throw err
    }
  } catch (err) {
    db.close()
    if (isCorrupt(err)) throw stateCorrupt(`state database ${p.file} is not a SQLite database or is damaged`, err)
    throw err
  }
  common.logger.debug({ file: p.file }, 'state database open')

  const engine: Engine = {
    name: 'sqlite',
    async load() {
      try {
        const st = emptyState(p.owner.operatorId, p.owner.chainId)
        const cursor = db.prepare("SELECT value FROM meta WHERE key = 'cursor'").pluck().get() as string | undefined
        if (cursor) st.cursor = Object.freeze(JSON.parse(cursor))
        for (const [id, json] of db.prepare('SELECT id, json FROM services').raw().iterate() as IterableIterator<[string, string]>) st.services[id] = JSON.parse(json) as ServiceRecord
        for (const [id, block] of db.prepare('SELECT event_id, block FROM processed').raw().iterate() as IterableIterator<[string, number | bigint]>) st.processed[id] = String(block)
        return st
      } catch (err) {
        throw stateCorrupt(`state database ${p.file} holds rows that cannot be read`, err)
      }
    },
    async write(changes) {
      writeChanges(db, changes)
      return undefined
    },
    async reload(ids) {
      const out = emptyChanges()
      const get = db.prepare('SELECT json FROM services WHERE id = ?').pluck()
      for (const id of ids.services) {
        const json = get.get(id) as string | undefined
        out.services.set(id, json ? (JSON.parse(json) as ServiceRecord) : null)
      }
      const getP = db.prepare('SELECT block FROM processed WHERE event_id = ?').pluck()
      for (const id of ids.processed) {
        const b = getP.get(id) as number | undefined
        out.processed.set(id, b === undefined ? null : String(b))
      }
      return out
    },
    async close() {
      if (db.open) db.close()
    },
  }
  return { engine, seeded }
}

/** The rows of a whole state, as one set of changes. */
export function seedChanges(st: State): Changes {
  const c = emptyChanges()
  for (const [id, rec] of Object.entries(st.services)) c.services.set(id, rec)
  for (const [id, b] of Object.entries(st.processed)) c.processed.set(id, b)
  if (st.cursor) c.cursor = { value: st.cursor }
  return c
}

const statements = new WeakMap<Database.Database, ReturnType<typeof prepare>>()
function prepare(db: Database.Database) {
  return {
    upsert: db.prepare(
      'INSERT INTO services (id, state, json, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET state = excluded.state, json = excluded.json, updated_at = excluded.updated_at, rev = services.rev + 1',
    ),
    del: db.prepare('DELETE FROM services WHERE id = ?'),
    addProcessed: db.prepare('INSERT INTO processed (event_id, block) VALUES (?, ?) ON CONFLICT (event_id) DO UPDATE SET block = excluded.block'),
    delProcessed: db.prepare('DELETE FROM processed WHERE event_id = ?'),
    setMeta: db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value'),
    delMeta: db.prepare('DELETE FROM meta WHERE key = ?'),
  }
}

/** Write `c` in one transaction (nested inside the caller's, if any). */
function writeChanges(db: Database.Database, c: Changes): void {
  let s = statements.get(db)
  if (!s) statements.set(db, (s = prepare(db)))
  const st = s
  db.transaction(() => {
    for (const [id, rec] of c.services) {
      if (rec) st.upsert.run(id, rec.state ?? '', JSON.stringify(rec), rec.updatedAt ?? '')
      else st.del.run(id)
    }
    // a crash inside the transaction: the rows above are written, the rest not, nothing committed
    faultPoint('store.mid-write')
    for (const [id, b] of c.processed) {
      if (b === null) st.delProcessed.run(id)
      else st.addProcessed.run(id, BigInt(b))
    }
    if (c.cursor) {
      if (c.cursor.value) st.setMeta.run('cursor', JSON.stringify(c.cursor.value))
      else st.delMeta.run('cursor')
    }
  })()
}
