/**
 * The state file of earlier versions (`<data_dir>/state.json`, one JSON document rewritten per commit) is imported
 * once, into an empty database, on the first start of this version; then it is renamed to a backup beside it.
 */
import { existsSync, readFileSync, renameSync } from 'node:fs'
import type { State } from '../state.js'
import { stateCorrupt, stateMismatch } from './errors.js'

export type Owner = { operatorId: string; chainId: number }

/** The state in `file`, checked for shape and owner; undefined when there is no such file. */
export function readJsonState(file: string, owner: Owner): State | undefined {
  if (!existsSync(file)) return undefined
  let st: State
  try {
    st = JSON.parse(readFileSync(file, 'utf8')) as State
  } catch (err) {
    throw stateCorrupt(`state file ${file} is not valid JSON`, err)
  }
  if (!st || typeof st !== 'object' || st.version !== 1 || typeof st.services !== 'object' || typeof st.processed !== 'object' || !st.services || !st.processed)
    throw stateCorrupt(`state file ${file} is not a state file of version 1`)
  if (st.operatorId !== owner.operatorId || st.chainId !== owner.chainId) throw stateMismatch(`state file ${file}`, st, owner)
  return st
}

/** Rename the imported file to `<file>.imported-<time>.bak` (kept, never deleted); returns the new path. */
export function backupJsonState(file: string, now = new Date()): string {
  const to = `${file}.imported-${now.toISOString().replace(/[:.]/g, '-')}.bak`
  renameSync(file, to)
  return to
}
