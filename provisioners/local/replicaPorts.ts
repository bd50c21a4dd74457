/** Every port the local provisioner's manifests under `deploymentsDir` give to a replica (running or not). */
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { readManifest } from './manifest.js'

export async function replicaPorts(deploymentsDir: string): Promise<number[]> {
  const ports: number[] = []
  for (const name of await readdir(deploymentsDir).catch(() => [] as string[])) {
    const m = await readManifest(join(deploymentsDir, name)).catch(() => undefined)
    for (const r of m?.replicaRecords ?? []) if (r.port) ports.push(r.port)
  }
  return ports
}
