/**
 * Retention: services closed or refunded long ago leave the live state file (which is rewritten on every change)
 * for an append-only archive, `<data dir>/archive.jsonl`, one JSON record per line. The archive line is written and
 * synced before the record leaves the state, so a crash in between leaves a duplicate line, never a lost record.
 */
import { appendFile, open } from 'node:fs/promises'
import type { Common } from '../core/common.js'
import type { ServiceRecord } from './state.js'
import type { Store } from './store.js'

export type ArchiveParameters = {
  store: Store
  file: string
  /** Age (since the last change) after which a terminal service is archived, ms. */
  retainMs: number
  now?: () => number
}

const TERMINAL = new Set(['closed', 'refunded'])

/** Move terminal services older than `retainMs` from the state to the archive; returns their ids. */
export async function archiveTerminal(common: Common, p: ArchiveParameters): Promise<string[]> {
  const now = p.now?.() ?? Date.now()
  const old: ServiceRecord[] = Object.values(p.store.read().services).filter(
    (s) => TERMINAL.has(s.state) && now - Date.parse(s.updatedAt) > p.retainMs,
  )
  if (!old.length) return []
  await appendFile(p.file, old.map((s) => JSON.stringify(s)).join('\n') + '\n', { mode: 0o600 })
  const fh = await open(p.file, 'r')
  try {
    await fh.sync()
  } finally {
    await fh.close()
  }
  const ids = old.map((s) => s.serviceId)
  await p.store.update((st) => {
    for (const id of ids) if (st.services[id] && TERMINAL.has(st.services[id]!.state)) delete st.services[id]
  })
  common.logger.info({ services: ids.length, file: p.file }, 'archived closed and refunded services')
  return ids
}
