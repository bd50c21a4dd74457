import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, test } from 'vitest'
import { createTestCommon } from '../core/common.js'
import { archiveTerminal } from './archive.js'
import type { ServiceRecord } from './state.js'
import { createStore } from './store.js'

const rec = (id: string, state: ServiceRecord['state'], updatedAt: string) => ({ serviceId: id, state, updatedAt }) as ServiceRecord

describe('archiveTerminal', () => {
  test('default: old closed and refunded services move to the archive; live and recent ones stay', async () => {
    const { common } = createTestCommon()
    const dir = mkdtempSync(join(tmpdir(), 'bpo-archive-'))
    const store = await createStore(common, { file: join(dir, 'state.sqlite'), operatorId: 'op', chainId: 1 })
    await store.update((st) => {
      st.services = {
        '1': rec('1', 'closed', '2026-01-01T00:00:00.000Z'),
        '2': rec('2', 'refunded', '2026-01-02T00:00:00.000Z'),
        '3': rec('3', 'active', '2026-01-01T00:00:00.000Z'),
        '4': rec('4', 'closed', '2026-03-01T00:00:00.000Z'),
      }
    })
    const file = join(dir, 'archive.jsonl')
    const now = () => Date.parse('2026-03-02T00:00:00.000Z')
    const ids = await archiveTerminal(common, { store, file, retainMs: 30 * 86_400_000, now })
    expect(ids.sort()).toEqual(['1', '2'])
    expect(Object.keys(store.read().services).sort()).toEqual(['3', '4'])
    const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as ServiceRecord)
    expect(lines.map((l) => l.serviceId).sort()).toEqual(['1', '2'])
    // nothing more to do on a second pass
    expect(await archiveTerminal(common, { store, file, retainMs: 30 * 86_400_000, now })).toEqual([])
  })
})
