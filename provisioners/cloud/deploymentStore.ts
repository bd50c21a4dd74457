/**
 * What a cloud target remembers per deployment (non-secret): the request as provisioned (with its offer), the
 * wanted replica count, and each replica's VM generation. One JSON file, written atomically, intent first.
 */
import { mkdirSync, readFileSync } from 'node:fs'
import { rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { DeploymentRequest } from '../types.js'

export type CloudDeployment = {
  request: DeploymentRequest
  replicas: number
  /** Replica index -> generation of its current VM (bumped before a replacement is created). */
  generations: Record<string, number>
}

type StoreState = { version: 1; deployments: Record<string, CloudDeployment> }

export type DeploymentStore = {
  get(id: string): CloudDeployment | undefined
  all(): [string, CloudDeployment][]
  /** Apply `fn` to a draft under the store's lock; persisted before the promise resolves. */
  update<T>(fn: (d: Record<string, CloudDeployment>) => T): Promise<T>
}

/** Open (or create) `<dir>/<name>.json`. Synchronous: runs once at construction. */
export function openDeploymentStore(dir: string, name: string): DeploymentStore {
  mkdirSync(dir, { recursive: true })
  const file = join(dir, `${name}.json`)
  let state: StoreState = { version: 1, deployments: {} }
  try {
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as StoreState
    if (parsed.version !== 1 || typeof parsed.deployments !== 'object') throw new Error(`${file}: unknown format`)
    state = parsed
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  let chain: Promise<unknown> = Promise.resolve()
  let seq = 0
  return {
    get: (id) => state.deployments[id],
    all: () => Object.entries(state.deployments),
    update(fn) {
      const run = chain.then(async () => {
        const draft = structuredClone(state)
        const out = fn(draft.deployments)
        const tmp = `${file}.${process.pid}.${++seq}.tmp`
        await writeFile(tmp, `${JSON.stringify(draft, null, 1)}\n`, { mode: 0o600 })
        await rename(tmp, file)
        state = draft
        return out
      })
      chain = run.catch(() => undefined)
      return run
    },
  }
}
