/**
 * The state store: SQLite embedded by default, PostgreSQL when `[store] url` names one (shared by several daemons).
 * An older state file (`state.json`) is imported into an empty database once, then renamed to a backup.
 */
import type { Common } from '../../core/common.js'
import type { Secret } from '../../config/secrets.js'
import { openStore } from './groupCommit.js'
import { backupJsonState, readJsonState } from './importJson.js'
import { startCoordination } from './coordination.js'
import { openPostgres } from './postgres.js'
import { openSqlite } from './sqlite.js'
import type { Store } from './types.js'

export type CreateStoreParameters = {
  operatorId: string
  chainId: number
  /** The embedded SQLite database (used when `url` is absent). */
  file: string
  /** A PostgreSQL URL, by secret reference (it may carry a password). */
  url?: Secret
  /** An older version's state file to import into an empty database (then renamed to a backup). */
  importFrom?: string
  /** Service leases on a shared database expire after this long without renewal, ms. Default 15000. */
  leaseMs?: number
  /** SQLite's durability: `full` (default, fsync per commit) or `normal` (survives a daemon crash, not a power cut). */
  sqliteSynchronous?: 'full' | 'normal'
  /** On PostgreSQL: elect a leader and lease services (default true; false for tools such as `store import`). */
  coordinate?: boolean
}

export async function createStore(common: Common, p: CreateStoreParameters): Promise<Store> {
  const owner = { operatorId: p.operatorId, chainId: p.chainId }
  const seed = p.importFrom ? () => readJsonState(p.importFrom!, owner) : undefined
  const pg = p.url ? await openPostgres(common, { url: p.url, owner, ...(seed && { seed }), leaseMs: p.leaseMs ?? 15_000 }) : undefined
  const { engine, seeded } = pg ?? (await openSqlite(common, { file: p.file, owner, ...(seed && { seed }), ...(p.sqliteSynchronous && { synchronous: p.sqliteSynchronous }) }))
  let store: Store
  try {
    const opened = await openStore(common, engine)
    store = opened
    if (pg && p.url && p.coordinate !== false) {
      // several daemons on one database: leader election and service leases
      const { access } = pg
      const coordination = await startCoordination(common, {
        url: p.url,
        where: access.where,
        operatorId: p.operatorId,
        leaseMs: p.leaseMs ?? 15_000,
        exclusive: access.exclusive,
        refresh: (full) => opened.sync(() => access.poll(full, opened.read())),
      })
      store = {
        ...opened,
        coordination: coordination.api,
        async close() {
          await coordination.stop()
          await opened.close()
        },
      }
    }
  } catch (err) {
    await engine.close().catch(() => undefined)
    throw err
  }
  if (seeded && p.importFrom) {
    const backup = backupJsonState(p.importFrom)
    common.logger.info({ from: p.importFrom, backup, services: Object.keys(store.read().services).length, engine: engine.name }, 'imported the state file into the database; the file is kept as a backup')
  }
  return store
}
