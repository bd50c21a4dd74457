import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { describe } from 'vitest'
import { createStore } from '../../daemon/store.js'
import { common, storeSuite, type Location } from './suite.js'

function location(): Location {
  const file = join(mkdtempSync(join(tmpdir(), 'bpo-sqlite-')), 'state.sqlite')
  const raw = <T>(fn: (db: Database.Database) => T): T => {
    const db = new Database(file)
    try {
      return fn(db)
    } finally {
      db.close()
    }
  }
  return {
    open: (o = {}) => createStore(common, { file, operatorId: o.operatorId ?? 'op', chainId: o.chainId ?? 1, ...(o.importFrom && { importFrom: o.importFrom }) }),
    exec: async (sql) => raw((db) => void db.exec(sql)),
    rows: async (sql) => raw((db) => db.prepare(sql).all() as Array<Record<string, unknown>>),
    failOnBoom: "CREATE TRIGGER fail_boom BEFORE INSERT ON processed WHEN NEW.event_id = 'boom' BEGIN SELECT RAISE(ABORT, 'refused by the test trigger'); END",
  }
}

describe('store: sqlite', () => {
  storeSuite({ fresh: async () => location() })
})
