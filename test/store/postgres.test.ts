import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import pg from 'pg'
import { makeSecret } from '../../config/secrets.js'
import type { BaseError } from '../../core/errors.js'
import { createStore } from '../../daemon/store.js'
import { postgresMissing, startPostgres, type PostgresServer } from '../helpers/postgres.js'
import { copyFileSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { importStore } from '../../daemon/store/importCommand.js'
import { common, legacyStateFile, record, storeSuite, type Location } from './suite.js'

describe.skipIf(postgresMissing)(`store: postgres${postgresMissing ? ` (skipped: ${postgresMissing})` : ''}`, () => {
  let server: PostgresServer
  beforeAll(async () => {
    server = await startPostgres()
  }, 60_000)
  afterAll(async () => {
    await server?.stop()
  })

  const location = async (): Promise<Location & { url: string }> => {
    const url = await server.createDatabase()
    const sql = async <T>(fn: (c: pg.Client) => Promise<T>): Promise<T> => {
      const c = new pg.Client({ connectionString: url })
      await c.connect()
      try {
        return await fn(c)
      } finally {
        await c.end()
      }
    }
    return {
      url,
      open: (o = {}) =>
        createStore(common, { file: '/nonexistent/unused.sqlite', url: makeSecret('env:TEST_PG_URL', url), operatorId: o.operatorId ?? 'op', chainId: o.chainId ?? 1, ...(o.importFrom && { importFrom: o.importFrom }) }),
      exec: (q) => sql(async (c) => void (await c.query(q))),
      rows: (q) => sql(async (c) => (await c.query(q)).rows),
      failOnBoom: `CREATE FUNCTION fail_boom() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF NEW.event_id = 'boom' THEN RAISE EXCEPTION 'refused by the test trigger'; END IF; RETURN NEW; END $$;
        CREATE TRIGGER fail_boom BEFORE INSERT ON processed FOR EACH ROW EXECUTE FUNCTION fail_boom()`,
    }
  }

  storeSuite({ fresh: location })

  test('behavior: store import copies the embedded database into an empty PostgreSQL, once', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'bpo-import-pg-'))
    const local = await createStore(common, { file: join(dataDir, 'state.sqlite'), operatorId: 'op', chainId: 1 })
    await local.update((s) => {
      for (let i = 1; i <= 20; i++) s.services[String(i)] = record(String(i))
      s.processed.e1 = '10'
      s.cursor = { blockNumber: '12', blockHash: '0xcd' }
    })
    const before = JSON.parse(JSON.stringify(local.read()))
    await local.close()
    const url = await server.createDatabase()
    const secret = makeSecret('env:TEST_PG_URL', url)
    const r = await importStore(common, { owner: { operatorId: 'op', chainId: 1 }, dataDir, url: secret })
    expect(r).toMatchObject({ services: 20, events: 1 })
    expect(r.to).not.toContain('bpo@')
    const shared = await createStore(common, { file: '/nonexistent/unused.sqlite', url: secret, operatorId: 'op', chainId: 1, coordinate: false })
    expect(JSON.parse(JSON.stringify(shared.read()))).toEqual(before)
    await shared.close()
    // a database that already holds state is never imported into
    await expect(importStore(common, { owner: { operatorId: 'op', chainId: 1 }, dataDir, url: secret })).rejects.toMatchObject({ code: 'STATE_MISMATCH', message: expect.stringMatching(/already holds state/) })
    // the old JSON state file imports the same way
    const json = join(dataDir, 'state.json')
    copyFileSync(legacyStateFile, json)
    const r2 = await importStore(common, { owner: { operatorId: 'legacy-op', chainId: 31337 }, dataDir, url: makeSecret('env:X', await server.createDatabase()), from: json })
    expect(r2.services).toBe(4)
  })

  test('behavior: a lost connection fails at most one batch (retryable); the next reconnects', async () => {
    const loc = await location()
    const store = await createStore(common, { file: '/nonexistent/unused.sqlite', url: makeSecret('env:TEST_PG_URL', loc.url), operatorId: 'op', chainId: 1, coordinate: false })
    await store.update((s) => void (s.processed.a = '1'))
    await loc.exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'blueprint-operator' AND datname = current_database()")
    const first = await store.update((s) => void (s.processed.b = '2')).then(() => 'ok', (e: BaseError) => e.code)
    expect(['ok', 'STATE_WRITE_FAILED']).toContain(first)
    await store.update((s) => void (s.processed.c = '3'))
    expect((await loc.rows('SELECT event_id FROM processed ORDER BY 1')).map((r) => r.event_id)).toEqual(first === 'ok' ? ['a', 'b', 'c'] : ['a', 'c'])
    await store.close()
  })

  test('error: an unreachable server is STORE_UNAVAILABLE (retryable), and the password never shows', async () => {
    const url = `postgres://bpo:s3cret-pw@127.0.0.1:${server.port + 1}/nope`
    const err = await createStore(common, { file: '/nonexistent/unused.sqlite', url: makeSecret('env:X', url), operatorId: 'op', chainId: 1 }).catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'STORE_UNAVAILABLE', retryable: true })
    expect(String((err as Error).message) + JSON.stringify(err)).not.toContain('s3cret-pw')
  })

  test('behavior: two daemons on one database never overwrite each other; a write on a stale row is replayed on the new one', async () => {
    const loc = await location()
    const a = await loc.open()
    const b = await loc.open()
    await a.update((s) => void (s.services['1'] = record('1')))
    // b has not seen the row: its insert meets a's row, and its update is replayed on it
    const seen = await b.update((s) => {
      const r = s.services['1']
      if (!r) {
        s.services['1'] = record('1', { deposit: 'from-b' })
        return 'inserted'
      }
      r.ledger.paid = String(BigInt(r.ledger.paid) + 5n)
      return 'added'
    })
    expect(seen).toBe('added')
    // a's copy is stale now: its change is replayed on b's row, not written over it
    await a.update((s) => void (s.services['1']!.health.failures = 3))
    const c = await loc.open()
    expect(c.read().services['1']!.ledger.paid).toBe('105')
    expect(c.read().services['1']!.health.failures).toBe(3)
    // an event id recorded by one daemon is never acted on again by the other
    await a.update((s) => void (s.processed.e1 = '7'))
    const again = await b.update((s) => {
      if (s.processed.e1) return 'skipped'
      s.processed.e1 = '7'
      s.services['1']!.ledger.paid = '0'
      return 'applied'
    })
    expect(again).toBe('skipped')
    expect(b.read().services['1']!.ledger.paid).toBe('105')
    for (const s of [a, b, c]) await s.close()
  })
})
