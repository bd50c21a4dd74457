/**
 * The placement and capacity ledger of the SSH target, persisted as one JSON file in the operator's state dir so a
 * restarted daemon never places more than a host can hold. Mutations are serialized and written atomically.
 */
import { mkdirSync, readFileSync } from 'node:fs'
import { rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Placement, Resources } from './types.js'

export type LedgerState = { version: 1; placements: Record<string, Placement> }

export type Ledger = {
  get(deploymentId: string): Placement | undefined
  all(): Placement[]
  /** Run `fn` on a draft of the state under the ledger's lock; the result is persisted before the promise resolves. */
  update<T>(fn: (draft: LedgerState) => T): Promise<T>
}

/** Load (or create) the ledger file `<dir>/ssh-ledger.json`. Synchronous: it runs once at start-up. */
export function openLedger(dir: string): Ledger {
  mkdirSync(dir, { recursive: true })
  const file = join(dir, 'ssh-ledger.json')
  let state: LedgerState = { version: 1, placements: {} }
  let text: string | undefined
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  if (text !== undefined) {
    const parsed = JSON.parse(text) as LedgerState
    if (parsed.version !== 1 || typeof parsed.placements !== 'object') throw new Error(`${file}: unknown ledger format`)
    state = parsed
  }
  let chain: Promise<unknown> = Promise.resolve()
  let seq = 0
  return {
    get: (id) => state.placements[id],
    all: () => Object.values(state.placements),
    update<T>(fn: (draft: LedgerState) => T): Promise<T> {
      const run = chain.then(async () => {
        const draft = structuredClone(state)
        const out = fn(draft)
        const tmp = `${file}.${process.pid}.${++seq}.tmp`
        await writeFile(tmp, `${JSON.stringify(draft, null, 2)}\n`, { mode: 0o600 })
        await rename(tmp, file)
        state = draft
        return out
      })
      chain = run.catch(() => undefined)
      return run
    },
  }
}

const ZERO: Resources = { vcpu: 0, memoryGiB: 0, storageGiB: 0 }

/** What one placement holds on its host: CPU and memory per running replica, storage per replica with data. */
export function reserved(p: Placement): Resources {
  return {
    vcpu: p.unit.vcpu * p.replicas,
    memoryGiB: p.unit.memoryGiB * p.replicas,
    storageGiB: p.unit.storageGiB * Math.max(p.replicas, p.dataReplicas),
  }
}

/** Sum of reservations per host name. */
export function usedByHost(placements: Placement[], except?: string): Map<string, Resources> {
  const used = new Map<string, Resources>()
  for (const p of placements) {
    if (p.deploymentId === except) continue
    const r = reserved(p)
    const u = used.get(p.host) ?? { ...ZERO }
    used.set(p.host, { vcpu: u.vcpu + r.vcpu, memoryGiB: u.memoryGiB + r.memoryGiB, storageGiB: u.storageGiB + r.storageGiB })
  }
  return used
}
