import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, test } from 'vitest'
import { createTestCommon } from '../core/common.js'
import { createStore } from './store.js'

const { common } = createTestCommon()
const dir = () => mkdtempSync(join(tmpdir(), 'bpo-store-'))

describe('createStore', () => {
  test('default: updates persist and survive a reopen', async () => {
    const file = join(dir(), 'state.json')
    const a = await createStore(common, { file, operatorId: 'op', chainId: 1 })
    await a.update((s) => {
      s.cursor = { blockNumber: '5', blockHash: '0xab' }
    })
    await a.close()
    const b = await createStore(common, { file, operatorId: 'op', chainId: 1 })
    expect(b.read().cursor).toEqual({ blockNumber: '5', blockHash: '0xab' })
    expect(JSON.parse(readFileSync(file, 'utf8')).cursor.blockNumber).toBe('5')
  })

  test('behavior: concurrent updates are serialized, none lost', async () => {
    const store = await createStore(common, { file: join(dir(), 'state.json'), operatorId: 'op', chainId: 1 })
    await Promise.all(Array.from({ length: 50 }, (_, i) => store.update((s) => void (s.processed[`e${i}`] = String(i)))))
    expect(Object.keys(store.read().processed)).toHaveLength(50)
  })

  test('behavior: a failing write leaves memory and disk as they were', async () => {
    const file = join(dir(), 'state.json')
    const store = await createStore(common, { file, operatorId: 'op', chainId: 1 })
    await store.update((s) => void (s.processed.a = '1'))
    mkdirSync(`${file}.tmp`) // the temp file cannot be created: every write fails, even as root
    await expect(store.update((s) => void (s.processed.b = '2'))).rejects.toThrow(/could not persist state/)
    expect(store.read().processed).toEqual({ a: '1' })
    expect(JSON.parse(readFileSync(file, 'utf8')).processed).toEqual({ a: '1' })
  })

  test('error: a state file of another operator or chain is refused', async () => {
    const file = join(dir(), 'state.json')
    const a = await createStore(common, { file, operatorId: 'op', chainId: 1 })
    await a.update(() => undefined)
    await expect(createStore(common, { file, operatorId: 'other', chainId: 1 })).rejects.toThrow(/belongs to operator op on chain 1/)
  })

  test('error: a corrupt state file is reported, not overwritten', async () => {
    const file = join(dir(), 'state.json')
    writeFileSync(file, '{"version":1,')
    await expect(createStore(common, { file, operatorId: 'op', chainId: 1 })).rejects.toThrow(/is not valid JSON/)
    expect(readFileSync(file, 'utf8')).toBe('{"version":1,')
  })

  test('behavior: an update that throws inside a batch is undone alone; the others commit', async () => {
    const store = await createStore(common, { file: join(dir(), 'state.json'), operatorId: 'op', chainId: 1 })
    const results = await Promise.allSettled([
      store.update((s) => void (s.processed.a = '1')),
      store.update((s) => {
        s.processed.bad = 'partial'
        throw new Error('refused')
      }),
      store.update((s) => {
        s.processed.c = String(Object.keys(s.processed).length)
        return 'c'
      }),
    ])
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled'])
    expect((results[2] as PromiseFulfilledResult<string>).value).toBe('c')
    expect(store.read().processed).toEqual({ a: '1', c: '1' })
  })
})
