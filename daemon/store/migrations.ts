/**
 * One schema for both engines, built by numbered migrations that run at start-up (inside the caller's transaction).
 * Dialect differences are kept to the few spots that need them. A database whose schema is newer than this daemon
 * knows is refused (STATE_CORRUPT) rather than written with an older idea of its shape.
 */
import { BaseError } from '../../core/errors.js'

export type Dialect = 'sqlite' | 'postgres'

export type Migration = { version: number; what: string; up(d: Dialect): string[] }

export const migrations: readonly Migration[] = [
  {
    version: 1,
    what: 'meta, services (one row per service, its ledger inside), processed event ids',
    up: () => [
      // operator_id, chain_id, cursor (JSON)
      'CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)',
      // rev counts the writes of a row, so a writer that read an older revision learns that another daemon wrote it
      'CREATE TABLE services (id TEXT PRIMARY KEY, state TEXT NOT NULL, json TEXT NOT NULL, updated_at TEXT NOT NULL, rev BIGINT NOT NULL DEFAULT 1)',
      'CREATE INDEX services_state ON services (state)',
      'CREATE TABLE processed (event_id TEXT PRIMARY KEY, block BIGINT NOT NULL)',
      'CREATE INDEX processed_block ON processed (block)',
    ],
  },
  {
    version: 2,
    what: 'service leases (several daemons on one PostgreSQL)',
    up: () => [
      'ALTER TABLE services ADD COLUMN lease_owner TEXT',
      // ms since the epoch, by the database's clock
      'ALTER TABLE services ADD COLUMN lease_until BIGINT NOT NULL DEFAULT 0',
      'CREATE INDEX services_lease ON services (lease_until)',
      // daemons alive now (heartbeat), so each claims its fair share
      'CREATE TABLE daemons (owner TEXT PRIMARY KEY, seen_until BIGINT NOT NULL)',
    ],
  },
]

export const LATEST_SCHEMA = migrations[migrations.length - 1]!.version

/** The few statements a migration run needs, in either engine. */
export type MigrationRunner = {
  exec(sql: string): Promise<void>
  versions(): Promise<number[]>
  record(version: number, at: string): Promise<void>
}

/** Bring the schema up to date; returns the versions applied. Run inside one transaction. */
export async function migrate(db: MigrationRunner, dialect: Dialect, where: string): Promise<number[]> {
  await db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)')
  const have = new Set(await db.versions())
  const newest = Math.max(0, ...have)
  if (newest > LATEST_SCHEMA) {
    throw new BaseError(`the state database ${where} has schema version ${newest}; this daemon knows up to ${LATEST_SCHEMA}`, {
      code: 'STATE_CORRUPT',
      details: ['it was written by a newer blueprint-operator: run that version (or restore a backup); it is left as it is'],
    })
  }
  const applied: number[] = []
  for (const m of migrations) {
    if (have.has(m.version)) continue
    for (const sql of m.up(dialect)) await db.exec(sql)
    await db.record(m.version, new Date().toISOString())
    applied.push(m.version)
  }
  return applied
}
