/**
 * Reading /proc: process identity (pid + start time, so a reused pid is never mistaken for ours) and the ownership
 * markers in a process's initial environment.
 */
import { readdir, readFile } from 'node:fs/promises'
import { AbortedError } from '../../core/errors.js'

export type ProcStat = {
  pid: number
  /** One-letter state; Z (zombie) and X (dead) count as not running. */
  state: string
  /** Process group id. */
  pgrp: number
  /** Start time in clock ticks after boot (field 22): with the pid, the process's identity. */
  startTime: string
}

/** Parse /proc/<pid>/stat; undefined when the process does not exist. */
export async function readProcStat(pid: number): Promise<ProcStat | undefined> {
  let text: string
  try {
    text = await readFile(`/proc/${pid}/stat`, 'utf8')
  } catch {
    return undefined
  }
  // comm may contain spaces and parentheses: the fields start after the last ')'
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ')
  const state = rest[0]
  const pgrp = Number(rest[2])
  const startTime = rest[19]
  if (!state || !startTime) return undefined
  return { pid, state, pgrp, startTime }
}

/** The initial environment of a process (what it was started with); undefined when unreadable. */
export async function readProcEnviron(pid: number): Promise<Map<string, string> | undefined> {
  let raw: Buffer
  try {
    raw = await readFile(`/proc/${pid}/environ`)
  } catch {
    return undefined
  }
  const env = new Map<string, string>()
  for (const entry of raw.toString('utf8').split('\0')) {
    const eq = entry.indexOf('=')
    if (eq > 0) env.set(entry.slice(0, eq), entry.slice(eq + 1))
  }
  return env
}

/** True when `pid` runs and is the same process that started at `startTime`. */
export async function isSameProcess(pid: number, startTime: string): Promise<boolean> {
  const st = await readProcStat(pid)
  return !!st && st.startTime === startTime && st.state !== 'Z' && st.state !== 'X'
}

export type MarkedProcess = {
  pid: number
  startTime: string
  pgrp: number
  /** Value of the deployment marker. */
  deploymentId: string
  /** REPLICA_INDEX from the environment, when present. */
  replica: number | undefined
}

/** Every running process whose environment carries `ownerKey=owner` (optionally also `deploymentKey=deploymentId`). */
export async function scanMarkedProcesses(p: {
  ownerKey: string
  owner: string
  deploymentKey: string
  deploymentId?: string
  signal?: AbortSignal
}): Promise<MarkedProcess[]> {
  const out: MarkedProcess[] = []
  const entries = await readdir('/proc')
  for (const name of entries) {
    if (!/^\d+$/.test(name)) continue
    if (p.signal?.aborted) throw new AbortedError('process scan', p.signal.reason)
    const pid = Number(name)
    if (pid === process.pid) continue
    const env = await readProcEnviron(pid)
    if (!env || env.get(p.ownerKey) !== p.owner) continue
    const dep = env.get(p.deploymentKey)
    if (!dep || (p.deploymentId !== undefined && dep !== p.deploymentId)) continue
    const st = await readProcStat(pid)
    if (!st || st.state === 'Z' || st.state === 'X') continue
    const idx = env.get('REPLICA_INDEX')
    out.push({ pid, startTime: st.startTime, pgrp: st.pgrp, deploymentId: dep, replica: idx !== undefined && /^\d+$/.test(idx) ? Number(idx) : undefined })
  }
  return out
}
