/**
 * Fault hook for the fault suite: `BPO_FAULT=<point>[@<n>][,<point>...]` makes the process SIGKILL itself the n-th
 * time (default the first) it reaches `faultPoint(<point>)`, so a test can crash the daemon at a chosen instant
 * (between an intent and its side effect, between a side effect and its record, mid-write). Unset: a no-op.
 */
import { writeSync } from 'node:fs'

const hits = new Map<string, number>()
let parsed: { raw: string; points: Map<string, number> } | undefined

function points(env: NodeJS.ProcessEnv): Map<string, number> {
  const raw = env.BPO_FAULT ?? ''
  if (parsed?.raw === raw) return parsed.points
  const m = new Map<string, number>()
  for (const part of raw.split(',').map((x) => x.trim()).filter(Boolean)) {
    const [name, nth] = part.split('@')
    const n = nth === undefined ? 1 : Number(nth)
    if (name && Number.isInteger(n) && n >= 1) m.set(name, n)
  }
  parsed = { raw, points: m }
  return m
}

/** The named crash point: kills the process (SIGKILL, no cleanup) when BPO_FAULT selects it; otherwise returns. */
export function faultPoint(name: string, env: NodeJS.ProcessEnv = process.env): void {
  if (!env.BPO_FAULT) return
  const want = points(env).get(name)
  if (want === undefined) return
  const n = (hits.get(name) ?? 0) + 1
  hits.set(name, n)
  if (n !== want) return
  // one line on stderr, written synchronously, so the test knows which point fired
  writeSync(2, `BPO_FAULT: killed at ${name}#${n}\n`)
  process.kill(process.pid, 'SIGKILL')
}
