import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { describe, expect, test } from 'vitest'
import { createTestCommon } from '../core/common.js'
import { createStore } from './store.js'

// the full suite both engines pass is test/store/suite.ts; these are the embedded store's own
const { common } = createTestCommon()
const dir = () => mkdtempSync(join(tmpdir(), 'bpo-store-'))

describe('createStore', () => {
  test('default: an embedded SQLite database in WAL mode; updates persist and survive a reopen', async () => {
    const file = join(dir(), 'state.sqlite')
    const a = await createStore(common, { file, operatorId: 'op', chainId: 1 })
    expect(a.engine).toBe('sqlite')
    expect(a.coordination).toBeUndefined()
    await a.update((s) => {
      s.cursor = { blockNumber: '5', blockHash: '0xab' }
    })
    await a.close()
    const b = await createStore(common, { file, operatorId: 'op', chainId: 1 })
    expect(b.read().cursor).toEqual({ blockNumber: '5', blockHash: '0xab' })
    await b.close()
    const db = new Database(file, { readonly: true })
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal')
    expect(JSON.parse(db.prepare("SELECT value FROM meta WHERE key = 'cursor'").pluck().get() as string).blockNumber).toBe('5')
    db.close()
  })

  test('error: a database of another operator or chain is refused', async () => {
    const file = join(dir(), 'state.sqlite')
    const a = await createStore(common, { file, operatorId: 'op', chainId: 1 })
    await a.close()
    await expect(createStore(common, { file, operatorId: 'other', chainId: 1 })).rejects.toThrow(/belongs to operator op on chain 1/)
  })

  test('error: a corrupt database file is reported, not overwritten', async () => {
    const file = join(dir(), 'state.sqlite')
    const junk = 'this is not a database '.repeat(200)
    writeFileSync(file, junk)
    await expect(createStore(common, { file, operatorId: 'op', chainId: 1 })).rejects.toMatchObject({ code: 'STATE_CORRUPT' })
    expect(readFileSync(file, 'utf8')).toBe(junk)
  })
})
