/**
 * The fault suite's figures: each fault file records its counts here (one JSON file per suite under
 * test-artifacts/faults/), and the run's global teardown (test/faults/globalSetup.ts) prints them summed as the one
 * line CI reads:
 * `faults: kills=N reorgs=N rpc_faults=N leaked=0 duplicates=0 double_refunds=0 missed_events=0 ledger_mismatch=0`.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const figuresDir = fileURLToPath(new URL('../../test-artifacts/faults/', import.meta.url))

export const FIELDS = ['kills', 'reorgs', 'rpc_faults', 'leaked', 'duplicates', 'double_refunds', 'missed_events', 'ledger_mismatch'] as const
export type Figures = Partial<Record<(typeof FIELDS)[number], number>>

/** One suite's figures (printed as its own line too, so a single file run shows them). */
export function recordFigures(suite: string, f: Figures): void {
  mkdirSync(figuresDir, { recursive: true })
  writeFileSync(join(figuresDir, `${suite}.json`), JSON.stringify(f))
  console.log(`faults (${suite}): ${faultLine(f)}`)
}

export function faultLine(f: Figures): string {
  return FIELDS.map((k) => `${k}=${f[k] ?? 0}`).join(' ')
}

/** Every recorded suite summed; undefined when no fault suite ran. */
export function summedFigures(): Figures | undefined {
  let files: string[]
  try {
    files = readdirSync(figuresDir).filter((f) => f.endsWith('.json'))
  } catch {
    return undefined
  }
  if (!files.length) return undefined
  const sum: Figures = {}
  for (const f of files) {
    const one = JSON.parse(readFileSync(join(figuresDir, f), 'utf8')) as Figures
    for (const k of FIELDS) sum[k] = (sum[k] ?? 0) + (one[k] ?? 0)
  }
  return sum
}

export function clearFigures(): void {
  rmSync(figuresDir, { recursive: true, force: true })
}
