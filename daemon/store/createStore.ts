/**
 * The state store: SQLite embedded by default, PostgreSQL when `[store] url` names one (shared by several daemons).
 * An older state file (`state.json`) is imported into an empty database once, then renamed to a backup.
 */
import type { Common } from '../../core/common.js'
import type { Secret } from '../../config/secrets.js'
import { openStore } from './groupCommit.js'
import { backupJsonState, readJsonState } from './importJson.js'
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
}

export async function createStore(common: Common, p: CreateStoreParameters): Promise<Store> {
  const owner = { operatorId: p.operatorId, chainId: p.chainId }
  const seed = p.importFrom ? () => readJsonState(p.importFrom!, owner) : undefined
  const { engine, seeded } = p.url
    ? await openPostgres(common, { url: p.url, owner, ...(seed && { seed }), leaseMs: p.leaseMs ?? 15_000 })
    : await openSqlite(common, { file: p.file, owner, ...(seed && { seed }) })
  let store: Store
  try {
    store = await openStore(common, engine)
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
