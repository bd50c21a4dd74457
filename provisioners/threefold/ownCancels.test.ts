import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, test } from 'vitest'
import { loadOwnCancels, OWN_CANCELS_KEEP_MS, ownCancelsPath, recordOwnCancels } from './ownCancels.js'

const dirs: string[] = []
const fresh = () => {
  const d = mkdtempSync(join(tmpdir(), 'bpo-own-cancels-'))
  dirs.push(d)
  return d
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

describe('own cancellations record', () => {
  test('default: ids recorded before their cancels are loaded back, from the file (owner-only), by any later reader', () => {
    const dir = fresh()
    expect(loadOwnCancels(dir)).toEqual(new Set())
    recordOwnCancels(join(dir, 'threefold'), 'bp-1-1', ['10', '11'])
    recordOwnCancels(join(dir, 'threefold'), 'bp-1-2', ['12'])
    expect(loadOwnCancels(join(dir, 'threefold'))).toEqual(new Set(['10', '11', '12']))
    expect(statSync(ownCancelsPath(join(dir, 'threefold'))).mode & 0o777).toBe(0o600)
  })

  test('behavior: entries older than OWN_CANCELS_KEEP_MS are dropped at the next write; nothing is written for no ids', () => {
    const dir = fresh()
    const t0 = Date.parse('2026-12-01T00:00:00Z')
    recordOwnCancels(dir, 'bp-1-1', ['1'], t0)
    recordOwnCancels(dir, 'bp-1-2', ['2'], t0 + OWN_CANCELS_KEEP_MS)
    expect(loadOwnCancels(dir)).toEqual(new Set(['1', '2']))
    recordOwnCancels(dir, 'bp-1-3', ['3'], t0 + OWN_CANCELS_KEEP_MS + 1)
    expect(loadOwnCancels(dir)).toEqual(new Set(['2', '3']))
    recordOwnCancels(fresh(), 'bp-1-4', [])
    expect(loadOwnCancels(dirs.at(-1)!)).toEqual(new Set())
  })

  test('behavior: a damaged record reads as empty and is moved aside at the next write (cancelling never stops)', () => {
    const dir = fresh()
    writeFileSync(ownCancelsPath(dir), '{not json')
    expect(loadOwnCancels(dir)).toEqual(new Set())
    recordOwnCancels(dir, 'bp-1-1', ['7'], 1234)
    expect(loadOwnCancels(dir)).toEqual(new Set(['7']))
    expect(readFileSync(`${ownCancelsPath(dir)}.corrupt-1234`, 'utf8')).toBe('{not json')
  })
})
