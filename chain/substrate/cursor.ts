/**
 * The TFChain watcher's persisted state: the last block fully delivered plus what it must remember to filter and
 * normalize later events (the twin's live contracts, the uptime of the nodes hosting them). One small JSON file,
 * written to a temporary name, fsynced, renamed over the old one and the directory fsynced.
 */
import { readFileSync } from 'node:fs'
import { writeFileDurably } from '../../core/durableWrite.js'
import { BaseError } from '../../core/errors.js'
import type { TfchainContract } from './events.js'

export type TfchainNodeWatch = {
  /** Last `NodeUptimeReported` (or when watching began), unix ms. */
  lastUptimeAt: number
  down: boolean
}

export type TfchainCursor = {
  /** Format version. */
  v: 1
  twinId: number
  /** Last block fully delivered. */
  blockNumber: number
  blockHash: string
  /** The twin's live contracts by id. */
  contracts: Record<string, TfchainContract>
  /** Nodes hosting the twin's node/rent contracts. */
  nodes: Record<string, TfchainNodeWatch>
}

/** The cursor in `path`, or undefined when there is none; a file that does not parse throws TFCHAIN_CURSOR_CORRUPT. */
export function loadTfchainCursor(path: string): TfchainCursor | undefined {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
  let c: TfchainCursor
  try {
    c = JSON.parse(text) as TfchainCursor
  } catch (cause) {
    throw new BaseError('the TFChain cursor file is not valid JSON', { code: 'TFCHAIN_CURSOR_CORRUPT', cause, meta: { path } })
  }
  if (c?.v !== 1 || !Number.isInteger(c.blockNumber) || typeof c.blockHash !== 'string' || typeof c.contracts !== 'object' || typeof c.nodes !== 'object') {
    throw new BaseError('the TFChain cursor file has an unknown shape', { code: 'TFCHAIN_CURSOR_CORRUPT', meta: { path } })
  }
  return c
}

/** Write the cursor durably (tmp + fsync + rename + fsync of the directory). */
export function saveTfchainCursor(path: string, c: TfchainCursor): void {
  writeFileDurably(path, JSON.stringify(c))
}
