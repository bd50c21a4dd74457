/**
 * `blueprint-operator store import [--from FILE] --config FILE`: copy the state of one daemon — its embedded SQLite
 * database (default `<data_dir>/state.sqlite`) or an older `state.json` — into the PostgreSQL of `[store] url`, which
 * must hold no state yet. Stop the daemon first; start it (and others) on PostgreSQL afterwards.
 */
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import type { Common } from '../../core/common.js'
import { BaseError } from '../../core/errors.js'
import type { Secret } from '../../config/secrets.js'
import type { State } from '../state.js'
import { readJsonState, type Owner } from './importJson.js'
import { describeUrl, openPostgres } from './postgres.js'
import { openSqlite } from './sqlite.js'

export type ImportStoreParameters = { owner: Owner; dataDir: string; url: Secret | undefined; from?: string }
export type ImportStoreReturnType = { from: string; to: string; services: number; events: number }

export async function importStore(common: Common, p: ImportStoreParameters): Promise<ImportStoreReturnType> {
  if (!p.url) throw new BaseError('[store] url is not set: there is no PostgreSQL to import into', { code: 'CONFIG_INVALID' })
  const from = p.from ?? join(p.dataDir, 'state.sqlite')
  if (!existsSync(from)) throw new BaseError(`${from} does not exist`, { code: 'CONFIG_INVALID', details: ['name the SQLite database or state.json to import with --from'] })
  let state: State
  if (from.endsWith('.json')) state = readJsonState(from, p.owner)!
  else {
    const { engine } = await openSqlite(common, { file: from, owner: p.owner })
    try {
      state = await engine.load()
    } finally {
      await engine.close()
    }
  }
  const to = describeUrl(p.url.reveal())
  const { engine, seeded } = await openPostgres(common, { url: p.url, owner: p.owner, seed: () => state, leaseMs: 15_000 })
  await engine.close()
  if (!seeded) {
    throw new BaseError(`the state database ${to} already holds state; nothing was imported`, {
      code: 'STATE_MISMATCH',
      details: ['import only into an empty database (a fresh one, or drop its tables first)'],
    })
  }
  return { from, to, services: Object.keys(state.services).length, events: Object.keys(state.processed).length }
}
