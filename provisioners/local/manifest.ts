/**
 * The per-deployment manifest of the local provisioner: what was asked, which ports and processes belong to it.
 * Written atomically (temp file, fsync, rename) before any process is started, so a crash never leaves a process that
 * no record names.
 */
import { randomBytes } from 'node:crypto'
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import type { DeploymentRequest } from '../types.js'

export type ReplicaRecord = {
  index: number
  /** Host port given to the replica as PORT; kept so a restart reuses it. */
  port: number
  /** Set once spawned; with `startTime` the identity of the process. */
  pid?: number
  /** /proc/<pid>/stat field 22, guards against pid reuse. */
  startTime?: string
  startedAt?: string
  /** Artifact digest the replica runs. */
  sha256?: string
  /** cgroup.procs files the replica joined (removed when it stops). */
  cgroups?: string[]
}

export type Manifest = {
  version: 1
  deploymentId: string
  operatorId: string
  request: DeploymentRequest
  /** Replicas wanted now (spec.replicas at provision, then whatever scale set). */
  replicas: number
  /** Verified artifact in the cache. */
  artifact?: { sha256: string; path: string }
  replicaRecords: ReplicaRecord[]
  /** The deployment's own workload uid (and gid), from the provisioner's range; recorded before any replica starts. */
  uid?: number
  createdAt: string
  updatedAt: string
}

export const manifestPath = (deploymentDir: string) => join(deploymentDir, 'manifest.json')

/** Read a deployment's manifest; undefined when there is none. */
export async function readManifest(deploymentDir: string): Promise<Manifest | undefined> {
  let text: string
  try {
    text = await readFile(manifestPath(deploymentDir), 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
  return JSON.parse(text) as Manifest
}

/** Write the manifest atomically and durably. */
export async function writeManifest(deploymentDir: string, m: Manifest): Promise<void> {
  const path = manifestPath(deploymentDir)
  await mkdir(dirname(path), { recursive: true })
  const tmp = `${path}.${randomBytes(4).toString('hex')}.tmp`
  const fh = await open(tmp, 'w', 0o600)
  try {
    await fh.writeFile(JSON.stringify({ ...m, updatedAt: new Date().toISOString() }, null, 2))
    await fh.sync()
  } finally {
    await fh.close()
  }
  try {
    await rename(tmp, path)
  } catch (err) {
    await rm(tmp, { force: true })
    throw err
  }
  // the rename itself must survive a power cut, not only the bytes
  const dh = await open(dirname(path), 'r')
  try {
    await dh.sync()
  } finally {
    await dh.close()
  }
}
