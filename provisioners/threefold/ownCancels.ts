/**
 * The record of the grid contracts this daemon cancels itself: the threefold target writes a contract's id here
 * before it asks the grid to cancel it, durably (intent first: a crash between the two leaves an id recorded, never a cancel
 * unrecorded), and the TFChain intake reads it to tell the daemon's own cancellations (scale to zero, scale down,
 * destroy, rollback) from the grid's or someone else's (which send the service back to placement). Kept in
 * `<data_dir>/threefold/own-cancels.json`; entries older than `OWN_CANCELS_KEEP_MS` are dropped at each write (the
 * watcher has long seen their blocks). A damaged record reads as empty and is moved aside (`.corrupt-<ms>`) at the next
 * write.
 */
import { readFileSync, renameSync } from 'node:fs'
import { join } from 'node:path'
import { writeFileDurably } from '../../core/durableWrite.js'

/** How long a recorded cancellation is kept, ms (30 days: a watcher that far behind is re-bootstrapped). */
export const OWN_CANCELS_KEEP_MS = 30 * 86_400_000

type OwnCancelsFile = { v: 1; contracts: Record<string, { at: string; deploymentId: string }> }

export const ownCancelsPath = (stateDir: string) => join(stateDir, 'own-cancels.json')

/** The record, or undefined when the file is not a record (unreadable JSON or another shape). */
function read(stateDir: string): OwnCancelsFile | undefined {
  let text: string
  try {
    text = readFileSync(ownCancelsPath(stateDir), 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { v: 1, contracts: {} }
    throw err
  }
  try {
    const f = JSON.parse(text) as OwnCancelsFile
    return f && f.v === 1 && typeof f.contracts === 'object' && f.contracts !== null ? f : undefined
  } catch {
    return undefined
  }
}

/** Record `contractIds` as about to be cancelled by this daemon for `deploymentId` (call before the cancel). */
export function recordOwnCancels(stateDir: string, deploymentId: string, contractIds: readonly string[], now = Date.now()): void {
  if (!contractIds.length) return
  const path = ownCancelsPath(stateDir)
  let f = read(stateDir)
  if (!f) {
    // a damaged record is kept aside and a fresh one started: cancelling must not stop (contracts nobody pays for
    // would keep running), and the worst a lost id does is re-place a service whose cancel the watcher has not seen
    renameSync(path, `${path}.corrupt-${now}`)
    f = { v: 1, contracts: {} }
  }
  for (const [id, e] of Object.entries(f.contracts)) if (now - Date.parse(e.at) > OWN_CANCELS_KEEP_MS) delete f.contracts[id]
  for (const id of contractIds) f.contracts[id] = { at: new Date(now).toISOString(), deploymentId }
  writeFileDurably(path, JSON.stringify(f))
}

/** The contract ids this daemon recorded as its own cancellations (none while the record is damaged: see above). */
export function loadOwnCancels(stateDir: string): Set<string> {
  return new Set(Object.keys(read(stateDir)?.contracts ?? {}))
}
