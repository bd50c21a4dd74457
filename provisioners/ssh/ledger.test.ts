import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, test } from 'vitest'
import { openLedger, reserved, usedByHost } from './ledger.js'
import type { Placement } from './types.js'

const dirs: string[] = []
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'bpo-ledger-'))
  dirs.push(d)
  return d
}
const pl = (id: string, host: string, replicas: number, dataReplicas = replicas): Placement => ({
  deploymentId: id,
  host,
  kind: 'native',
  request: {} as Placement['request'],
  unit: { vcpu: 0.5, memoryGiB: 1, storageGiB: 10 },
  replicas,
  dataReplicas,
  ports: {},
  createdAt: '2026-01-01T00:00:00.000Z',
})

describe('ledger', () => {
  test('default: updates persist and a reopened ledger sees them', async () => {
    const dir = tmp()
    const l = openLedger(dir)
    await l.update((d) => void (d.placements.a = pl('a', 'h1', 2)))
    expect(openLedger(dir).get('a')?.replicas).toBe(2)
    expect(JSON.parse(readFileSync(join(dir, 'ssh-ledger.json'), 'utf8')).placements.a.host).toBe('h1')
  })

  test('behavior: concurrent updates are serialized, none is lost', async () => {
    const l = openLedger(tmp())
    await Promise.all(Array.from({ length: 20 }, (_, i) => l.update((d) => void (d.placements[`d${i}`] = pl(`d${i}`, 'h1', 1)))))
    expect(l.all().length).toBe(20)
  })

  test('behavior: a throwing update changes nothing', async () => {
    const l = openLedger(tmp())
    await l.update((d) => void (d.placements.a = pl('a', 'h1', 1)))
    await expect(
      l.update((d) => {
        d.placements.a!.replicas = 99
        throw new Error('no room')
      }),
    ).rejects.toThrow('no room')
    expect(l.get('a')?.replicas).toBe(1)
  })

  test('behavior: storage stays reserved for kept data at zero replicas', () => {
    expect(reserved(pl('a', 'h1', 0, 3))).toEqual({ vcpu: 0, memoryGiB: 0, storageGiB: 30 })
    const used = usedByHost([pl('a', 'h1', 2), pl('b', 'h1', 1), pl('c', 'h2', 1)], 'b')
    expect(used.get('h1')).toEqual({ vcpu: 1, memoryGiB: 2, storageGiB: 20 })
    expect(used.get('h2')).toEqual({ vcpu: 0.5, memoryGiB: 1, storageGiB: 10 })
  })
})
