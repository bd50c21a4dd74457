/**
 * What every step of the threefold target works on: its parameters, logger, clock, the deployments it made (its
 * state file, `<stateDir>/deployments.json`, written after every change) and the nodes that failed recently.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Decimal } from 'decimal.js'
import type { Common, Logger } from '../../core/common.js'
import { BaseError } from '../../core/errors.js'
import type { Offer } from '../../core/offer.js'
import type { CallOptions, DeploymentRequest } from '../types.js'
import type { GridSupervisor } from './createGridSupervisor.js'

export type ThreefoldProvisionerParameters = {
  /** The supervised grid worker; closed with the provisioner. */
  supervisor: Pick<GridSupervisor, 'call' | 'close'>
  /** Grid proxy base URL (node and farm records). */
  proxyUrl: string
  /** The catalog's offers (the threefold ones are used). */
  catalogOffers(): readonly Offer[]
  /** USD per TFT now. */
  tftUsd(): Promise<Decimal.Value>
  minRunwayHours: number
  tftBuffer: Decimal.Value
  farms: readonly number[]
  nodeCooldownMs: number
  /** Flist of the VM that downloads, sha256-verifies and runs a native artifact. */
  runnerFlist: string
  /** Folder of the target's state file. */
  stateDir: string
  allowTestingSources?: boolean
  /** Candidates fetched from the grid proxy per provision. Default 8. */
  maxCandidates?: number
  /** Nodes tried per replica before giving up. Default 3. */
  maxNodeAttempts?: number
  /** Grid proxy request timeout, ms. Default 10 000. */
  proxyTimeoutMs?: number
  /** A new VM's first port must accept TCP connections within this long, ms. Default 600 000. */
  bootTimeoutMs?: number
  /** One TCP probe of a VM's port, ms. Default 3 000. */
  probeTimeoutMs?: number
  now?: () => number
}

/** One VM of a deployment: its grid deployment name, node, contracts and public IPv4 (if any). */
export type Replica = { name: string; nodeId: number; contracts: string[]; publicIp?: string }
export type Entry = { request: DeploymentRequest; wanted: number; hourlyUsd: string; replicas: Replica[] }
/** Deployment id → what the target made for it. */
export type ThreefoldState = Record<string, Entry>

export type ThreefoldContext = {
  p: ThreefoldProvisionerParameters
  log: Logger
  now(): number
  state: ThreefoldState
  /** Write the state file (atomically). */
  save(): void
  /** nodeId → when a deployment there last failed with a capacity error, ms. */
  failedAt: Map<number, number>
}

/** Load the state file and build the context. */
export function createThreefoldContext(common: Common, p: ThreefoldProvisionerParameters): ThreefoldContext {
  const statePath = join(p.stateDir, 'deployments.json')
  let state: ThreefoldState = {}
  try {
    state = JSON.parse(readFileSync(statePath, 'utf8')) as ThreefoldState
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new BaseError('the threefold state file is not valid JSON', { code: 'STATE_CORRUPT', cause: err, meta: { path: statePath } })
  }
  return {
    p,
    log: common.logger,
    now: p.now ?? Date.now,
    state,
    save() {
      mkdirSync(p.stateDir, { recursive: true })
      writeFileSync(`${statePath}.tmp`, JSON.stringify(state), { mode: 0o600 })
      renameSync(`${statePath}.tmp`, statePath)
    },
    failedAt: new Map(),
  }
}

/** The grid deployment name of replica `i`: `<deploymentId>-r<i>`. */
export const replicaName = (deploymentId: string, i: number) => `${deploymentId}-r${i}`
/** The deployment id a grid deployment name belongs to (`<id>-r<n>`), or undefined. */
export const deploymentIdOfName = (name: string | undefined): string | undefined => (name ? /^(.+)-r\d+$/.exec(name)?.[1] : undefined)

/** `{ signal }` when there is one (exactOptionalPropertyTypes). */
export const sig = (signal: AbortSignal | undefined): CallOptions => (signal ? { signal } : {})
