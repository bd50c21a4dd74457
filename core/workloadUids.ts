/**
 * Per-deployment workload uids: every deployment's processes run as a uid of its own, taken from a range the operator
 * reserves for this daemon (no /etc/passwd entry needed: setpriv --reuid N --regid N --clear-groups). One pure rule
 * for the local and SSH targets: the uid is chosen deterministically from the deployment id (so the same deployment
 * lands on the same uid when nothing collides), probing past uids other deployments hold; it is then recorded with
 * the deployment and reused on every later start, so two deployments never share one.
 */
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'

/** Inclusive [min, max]. */
export type UidRange = readonly [number, number]

/** Highest uid accepted (below the 16-bit nobody/nogroup of old kernels is not required; 2^31-2 keeps clear of -1). */
export const MAX_WORKLOAD_UID = 2 ** 31 - 2

/** Problems of a configured range (empty when usable): whole numbers, 1000 <= min <= max <= 2^31-2. */
export function uidRangeProblems(range: unknown): string[] {
  if (!Array.isArray(range) || range.length !== 2) return [`got ${JSON.stringify(range)}, expected [min, max]`]
  const [lo, hi] = range as [unknown, unknown]
  if (!Number.isInteger(lo) || !Number.isInteger(hi)) return [`got ${JSON.stringify(range)}, expected two whole numbers`]
  const problems: string[] = []
  if ((lo as number) < 1000) problems.push(`min ${lo} is below 1000 (system accounts live there)`)
  if ((hi as number) > MAX_WORKLOAD_UID) problems.push(`max ${hi} is above ${MAX_WORKLOAD_UID}`)
  if ((lo as number) > (hi as number)) problems.push(`min ${lo} is above max ${hi}`)
  return problems
}

/** True when `uid` is a whole number inside `range`. */
export function inUidRange(uid: unknown, range: UidRange): uid is number {
  return typeof uid === 'number' && Number.isInteger(uid) && uid >= range[0] && uid <= range[1]
}

/**
 * The uid for `key` (operator id and deployment id): the range slot its sha256 names, or the next free one after it.
 * Undefined when every uid of the range is taken.
 */
export function chooseWorkloadUid(key: string, range: UidRange, taken: ReadonlySet<number>): number | undefined {
  const [lo, hi] = range
  const span = hi - lo + 1
  const start = Number(BigInt(`0x${createHash('sha256').update(key).digest('hex').slice(0, 12)}`) % BigInt(span))
  for (let k = 0; k < span; k++) {
    const uid = lo + ((start + k) % span)
    if (!taken.has(uid)) return uid
  }
  return undefined
}

/**
 * Accounts and groups of this machine whose id falls inside `range` (from /etc/passwd and /etc/group): a workload
 * given such a uid (or gid) would read that account's files, so the range must be free of them.
 */
export function localAccountsInRange(range: UidRange, files: { passwd?: string; group?: string } = {}): string[] {
  const out: string[] = []
  for (const [kind, file] of [['user', files.passwd ?? '/etc/passwd'], ['group', files.group ?? '/etc/group']] as const) {
    let text = ''
    try {
      text = readFileSync(file, 'utf8')
    } catch {
      continue
    }
    for (const line of text.split('\n')) {
      const f = line.split(':')
      const id = Number(f[2])
      if (f.length >= 3 && f[2] !== '' && Number.isInteger(id) && id >= range[0] && id <= range[1]) out.push(`${kind} ${f[0]} (${id})`)
    }
  }
  return out
}
