/**
 * The store suite every engine passes: durability across reopen, group commit, undo of a throwing update, a failed
 * write that changes nothing, copy-on-write drafts (unchanged records keep their identity; only changed rows are
 * written), pruning, the refusals, and the one-time import of a state file written by the previous (JSON) version.
 */
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect, test } from 'vitest'
import { createTestCommon } from '../../core/common.js'
import { BaseError } from '../../core/errors.js'
import { pruneProcessed } from '../../daemon/intake.js'
import { transition, type ServiceRecord, type State } from '../../daemon/state.js'
import type { Store } from '../../daemon/store.js'

/** Written by the JSON store of the previous version (daemon/store.ts at a8ffbc3) through intake and transitions. */
export const legacyStateFile = new URL('./fixtures/state-v1.json', import.meta.url).pathname

export type OpenOptions = { operatorId?: string; chainId?: number; importFrom?: string }

/** One database the suite may open, reopen and poke at with SQL. */
export type Location = {
  open(o?: OpenOptions): Promise<Store>
  /** Run SQL against the database directly (as another process would). */
  exec(sql: string): Promise<void>
  /** Rows of a query. */
  rows(sql: string): Promise<Array<Record<string, unknown>>>
  /** SQL creating a trigger that refuses inserting the processed id 'boom' (a write that fails in the database). */
  failOnBoom: string
}

export type StoreHarness = { fresh(): Promise<Location> }

export const { common } = createTestCommon()

export function record(id: string, over: Partial<ServiceRecord> = {}): ServiceRecord {
  const at = '2026-12-01T00:00:00.000Z'
  return {
    serviceId: id, blueprintId: '1', chainId: 1, customer: `0x${'22'.repeat(20)}`, tierIndex: 0, ttlSeconds: '3600', deposit: '100',
    deploymentId: `bp-1-${id}`, state: 'requested', replicas: 0, endpoints: [], health: { failures: 0, restarts: 0 },
    ledger: { paid: '100', earned: '0', withdrawn: '0', refunded: '0', cloudCostUsd: '0' }, createdAt: at, updatedAt: at,
    history: [{ at, from: null, to: 'requested', cause: 'ServiceInitiated' }],
    ...over,
  }
}

const plain = (s: Readonly<State>) => JSON.parse(JSON.stringify(s)) as State

export function storeSuite(h: StoreHarness): void {
  test('default: updates persist and survive a reopen', async () => {
    const loc = await h.fresh()
    const a = await loc.open()
    await a.update((s) => {
      s.cursor = { blockNumber: '5', blockHash: '0xab' }
      s.services['1'] = record('1')
      s.processed.e1 = '5'
    })
    await a.update((s) => {
      s.services['1']!.health.failures = 2
      s.services['1']!.history.push({ at: 'x', from: 'requested', to: 'provisioning', cause: 'test' })
    })
    const before = plain(a.read())
    await a.close()
    const b = await loc.open()
    expect(plain(b.read())).toEqual(before)
    expect(b.read().cursor).toEqual({ blockNumber: '5', blockHash: '0xab' })
    expect(b.read().services['1']!.history).toHaveLength(2)
    await b.close()
  })

  test('behavior: concurrent updates are serialized, none lost', async () => {
    const store = await (await h.fresh()).open()
    await Promise.all(Array.from({ length: 50 }, (_, i) => store.update((s) => void (s.processed[`e${i}`] = String(i)))))
    await Promise.all(
      Array.from({ length: 20 }, () =>
        store.update((s) => {
          const r = (s.services['1'] ??= record('1'))
          r.ledger.paid = String(BigInt(r.ledger.paid) + 1n)
        }),
      ),
    )
    expect(Object.keys(store.read().processed)).toHaveLength(50)
    expect(store.read().services['1']!.ledger.paid).toBe('120')
    await store.close()
  })

  test('behavior: an update that throws inside a batch is undone alone; the others commit', async () => {
    const store = await (await h.fresh()).open()
    await store.update((s) => void (s.services['1'] = record('1')))
    const results = await Promise.allSettled([
      store.update((s) => void (s.processed.a = '1')),
      store.update((s) => {
        s.processed.bad = 'partial'
        s.services['1']!.health.failures = 99
        s.services['1']!.history.push({ at: 'x', from: null, to: 'closed', cause: 'partial' })
        s.services['2'] = record('2')
        throw new Error('refused')
      }),
      store.update((s) => {
        s.processed.c = String(Object.keys(s.processed).length)
        s.services['1']!.health.restarts += 1
        return 'c'
      }),
    ])
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled'])
    expect((results[2] as PromiseFulfilledResult<string>).value).toBe('c')
    expect(store.read().processed).toEqual({ a: '1', c: '1' })
    expect(store.read().services['1']!.health).toEqual({ failures: 0, restarts: 1 })
    expect(store.read().services['1']!.history).toHaveLength(1)
    expect(store.read().services['2']).toBeUndefined()
    await store.close()
  })

  test('behavior: a failing write rejects its whole batch (retryable) and leaves memory and database as they were', async () => {
    const loc = await h.fresh()
    const store = await loc.open()
    await store.update((s) => {
      s.processed.a = '1'
      s.services['1'] = record('1')
    })
    await loc.exec(loc.failOnBoom)
    const before = plain(store.read())
    const results = await Promise.allSettled([
      store.update((s) => void (s.services['1']!.health.failures = 7)),
      store.update((s) => void (s.processed.boom = '2')),
    ])
    for (const r of results) {
      expect(r.status).toBe('rejected')
      const err = (r as PromiseRejectedResult).reason as BaseError
      expect(err.code).toBe('STATE_WRITE_FAILED')
      expect(err.retryable).toBe(true)
    }
    expect(plain(store.read())).toEqual(before)
    expect((await loc.rows("SELECT json FROM services WHERE id = '1'")).map((r) => JSON.parse(String(r.json)).health.failures)).toEqual([0])
    // the next batch goes through
    await store.update((s) => void (s.services['1']!.health.failures = 8))
    await store.close()
    const again = await loc.open()
    expect(again.read().services['1']!.health.failures).toBe(8)
    expect(again.read().processed).toEqual({ a: '1' })
    await again.close()
  })

  test('behavior: readers never see a change before it is committed', async () => {
    const store = await (await h.fresh()).open()
    let inside: unknown
    const p = store.update((s) => {
      s.processed.z = '1'
      inside = store.read().processed.z
    })
    expect(store.read().processed.z).toBeUndefined()
    await p
    expect(inside).toBeUndefined()
    expect(store.read().processed.z).toBe('1')
    await store.close()
  })

  test('behavior: copy-on-write — only changed records are copied and written; readers keep the old version', async () => {
    const loc = await h.fresh()
    const store = await loc.open()
    await store.update((s) => {
      for (let i = 1; i <= 50; i++) s.services[String(i)] = record(String(i), i % 2 ? { state: 'active', replicas: 2, spec: { vcpu: 1 } as never, quote: { target: 't' } as never } : {})
    })
    const held = store.read().services['7']!
    const others = Object.fromEntries(Object.entries(store.read().services))
    const revs = async () => Object.fromEntries((await loc.rows('SELECT id, rev FROM services')).map((r) => [String(r.id), Number(r.rev)]))
    const revsBefore = await revs()
    const used = await store.update((s) => {
      // the quote step's pattern: read every service, change one
      let vcpu = 0
      for (const o of Object.values(s.services)) if (o.state === 'active' && o.spec) vcpu += o.spec.vcpu * o.replicas
      s.services['7']!.health.failures = 1
      s.services['7']!.endpoints.push('http://x')
      return vcpu
    })
    expect(used).toBe(50)
    expect(held.health.failures).toBe(0) // the reader's object is the old version, untouched
    expect(held.endpoints).toEqual([])
    expect(store.read().services['7']!.health.failures).toBe(1)
    expect(store.read().services['7']!.endpoints).toEqual(['http://x'])
    for (const [id, r] of Object.entries(others)) if (id !== '7') expect(store.read().services[id]).toBe(r)
    const revsAfter = await revs()
    expect(Object.keys(revsAfter).filter((id) => revsAfter[id] !== revsBefore[id])).toEqual(['7'])
    await store.close()
  })

  test('behavior: drafts behave like plain objects', async () => {
    const store = await (await h.fresh()).open()
    await store.update((s) => {
      s.services['1'] = record('1', { missing: { since: 'x', checks: 1 }, chain: { paidUntil: '5' } })
      s.services['4'] = record('4', { endpoints: ['http://a'] })
    })
    const out = await store.update((s) => {
      const r = s.services['1']!
      expect(Array.isArray(r.history)).toBe(true)
      expect('missing' in r).toBe(true)
      delete r.missing
      expect('missing' in r).toBe(false)
      r.chain = { ...r.chain, balance: '9' }
      transition(r, 'provisioning', 'quoted', { now: new Date('2026-12-01T01:00:00Z') })
      r.history = [...r.history] // views taken from the draft become copies when stored
      s.services['2'] = s.services['4']! // a view stored under another id is stored as a copy
      expect(Object.keys(s.services).sort()).toEqual(['1', '2', '4'])
      expect(JSON.parse(JSON.stringify(s.services['1'])).state).toBe('provisioning')
      return { state: r.state, last: r.history.at(-1)!.to }
    })
    expect(out).toEqual({ state: 'provisioning', last: 'provisioning' })
    const st = store.read()
    expect(st.services['1']!.missing).toBeUndefined()
    expect(st.services['1']!.chain).toEqual({ paidUntil: '5', balance: '9' })
    expect(st.services['1']!.history.map((t) => t.to)).toEqual(['requested', 'provisioning'])
    expect(st.services['2']).toEqual(st.services['4'])
    expect(st.services['2']).not.toBe(st.services['4'])
    await store.update((s) => {
      delete s.services['2']
      delete s.services['4']
      s.services['3'] = record('3')
      s.services['3'].state = 'active'
    })
    expect(Object.keys(store.read().services).sort()).toEqual(['1', '3'])
    expect(store.read().services['3']!.state).toBe('active')
    // replacing the whole map still works (deletes what it lacks)
    await store.update((s) => {
      s.services = { '9': record('9') }
    })
    expect(Object.keys(store.read().services)).toEqual(['9'])
    await store.close()
  })

  test('behavior: pruning forgets old event ids, keeps recent ones, also those added in the same batch', async () => {
    const loc = await h.fresh()
    const store = await loc.open()
    await store.update((s) => {
      for (let i = 0; i < 300; i++) s.processed[`e${i}`] = String(i * 100)
    })
    const pruned = await Promise.all([
      store.update((s) => {
        s.processed.late = '5' // an old block added now
        return pruneProcessed(s, 20_000n) // floor 10,000: e0..e99 and late go
      }),
      store.update((s) => pruneProcessed(s, 20_050n)), // e100 goes too
    ])
    expect(pruned).toEqual([101, 1])
    const left = Object.keys(store.read().processed)
    expect(left).toHaveLength(199)
    expect(left).not.toContain('late')
    expect(left).not.toContain('e100')
    expect(left).toContain('e101')
    expect(Number((await loc.rows('SELECT count(*) AS n FROM processed'))[0]!.n)).toBe(199)
    // ids deleted by hand, then pruning again, and ids re-added at an older block
    await store.update((s) => {
      delete s.processed.e150
      s.processed.e299 = '100'
    })
    expect(await store.update((s) => pruneProcessed(s, 25_000n))).toBe(50) // e101..e149 and e299 (now at block 100)
    expect(Object.keys(store.read().processed)).toHaveLength(148)
    await store.close()
  })

  test('error: a database of another operator or chain is refused', async () => {
    const loc = await h.fresh()
    const a = await loc.open()
    await a.update((s) => void (s.processed.x = '1'))
    await a.close()
    await expect(loc.open({ operatorId: 'other' })).rejects.toThrow(/belongs to operator op on chain 1/)
    await expect(loc.open({ chainId: 2 })).rejects.toMatchObject({ code: 'STATE_MISMATCH' })
  })

  test('error: a database written by a newer version is refused and left as it is', async () => {
    const loc = await h.fresh()
    await (await loc.open()).close()
    await loc.exec("INSERT INTO schema_migrations (version, applied_at) VALUES (999, 'future')")
    await expect(loc.open()).rejects.toMatchObject({ code: 'STATE_CORRUPT' })
    expect((await loc.rows('SELECT max(version) AS v FROM schema_migrations'))[0]!.v).toBe(999)
  })

  test('error: a row that is not valid JSON is reported as corrupt', async () => {
    const loc = await h.fresh()
    const a = await loc.open()
    await a.update((s) => void (s.services['1'] = record('1')))
    await a.close()
    await loc.exec("UPDATE services SET json = '{\"serviceId\":' WHERE id = '1'")
    await expect(loc.open()).rejects.toMatchObject({ code: 'STATE_CORRUPT' })
  })

  test('behavior: a state file of the previous version is imported once and kept as a backup', async () => {
    const loc = await h.fresh()
    const dir = mkdtempSync(join(tmpdir(), 'bpo-import-'))
    const file = join(dir, 'state.json')
    copyFileSync(legacyStateFile, file)
    const legacy = JSON.parse(readFileSync(file, 'utf8')) as State
    const a = await loc.open({ operatorId: 'legacy-op', chainId: 31337, importFrom: file })
    expect(plain(a.read())).toEqual(legacy)
    expect(existsSync(file)).toBe(false)
    const backups = readdirSync(dir).filter((f) => /^state\.json\.imported-.*\.bak$/.test(f))
    expect(backups).toHaveLength(1)
    expect(JSON.parse(readFileSync(join(dir, backups[0]!), 'utf8'))).toEqual(legacy)
    // the imported state is live state: it changes and persists like any other
    await a.update((s) => transition(s.services['2']!, 'refunded', 'refund final'))
    await a.close()
    // a state file that shows up again later is not imported over the database
    writeFileSync(file, JSON.stringify({ ...legacy, services: {} }))
    const b = await loc.open({ operatorId: 'legacy-op', chainId: 31337, importFrom: file })
    expect(b.read().services['2']!.state).toBe('refunded')
    expect(Object.keys(b.read().services)).toHaveLength(4)
    expect(b.read().cursor).toEqual(legacy.cursor)
    expect(existsSync(file)).toBe(true)
    await b.close()
  })

  test('error: a corrupt or foreign state file is not imported and left as it is', async () => {
    const loc = await h.fresh()
    const dir = mkdtempSync(join(tmpdir(), 'bpo-import-'))
    const file = join(dir, 'state.json')
    writeFileSync(file, '{"version":1,')
    await expect(loc.open({ importFrom: file })).rejects.toThrow(/is not valid JSON/)
    expect(readFileSync(file, 'utf8')).toBe('{"version":1,')
    copyFileSync(legacyStateFile, file)
    await expect(loc.open({ importFrom: file })).rejects.toMatchObject({ code: 'STATE_MISMATCH' })
    // once fixed (the right operator), the import happens on the next start
    const a = await loc.open({ operatorId: 'legacy-op', chainId: 31337, importFrom: file })
    expect(Object.keys(a.read().services)).toHaveLength(4)
    await a.close()
  })
}
