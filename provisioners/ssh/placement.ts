/**
 * Host choice for the SSH target: the cheapest host whose free capacity holds spec × replicas, ties broken by name.
 * Pure: capacity comes from the ledger, eligibility (region, runtime) from the caller.
 */
import { usd } from '../../core/money.js'
import type { Resources, SshHost } from './types.js'

// sums of fractional vCPU/GiB (0.1 + 0.2) must not refuse a request that fits exactly
const EPS = 1e-9

export type ChooseHostParameters = {
  hosts: readonly SshHost[]
  used: Map<string, Resources>
  /** Total need (per replica × replicas). */
  need: Resources
  /** Empty: any region. Otherwise the host's region must equal one or start with `<entry>-`. */
  regions: readonly string[]
  /** Host name the request pins, if any (then `regions` is not applied). */
  pinned?: string | undefined
}

export type ChooseHostReturnType = { ok: true; hosts: SshHost[] } | { ok: false; problems: string[] }

/** True when `need` fits into `host` given `used`. */
export function fits(host: SshHost, used: Resources | undefined, need: Resources): boolean {
  const u = used ?? { vcpu: 0, memoryGiB: 0, storageGiB: 0 }
  return (
    u.vcpu + need.vcpu <= host.capacity.vcpu + EPS &&
    u.memoryGiB + need.memoryGiB <= host.capacity.memoryGiB + EPS &&
    u.storageGiB + need.storageGiB <= host.capacity.storageGiB + EPS
  )
}

/** True when the host's region satisfies the allowed regions. */
export function regionMatches(host: SshHost, regions: readonly string[]): boolean {
  if (!regions.length) return true
  const r = host.region?.toLowerCase()
  if (!r) return false
  return regions.some((x) => {
    const w = x.toLowerCase()
    return r === w || r.startsWith(`${w}-`)
  })
}

/** Feasible hosts, cheapest first (then by name); or why none is. */
export function chooseHosts(p: ChooseHostParameters): ChooseHostReturnType {
  const problems: string[] = []
  let candidates = [...p.hosts]
  if (p.pinned !== undefined) {
    candidates = candidates.filter((h) => h.name === p.pinned)
    if (!candidates.length) return { ok: false, problems: [`placement: no host named ${JSON.stringify(p.pinned)}`] }
  }
  const ok: SshHost[] = []
  for (const h of candidates) {
    // a pinned host is the daemon's choice (it matched the offer's region already); regions filter free placement
    if (p.pinned === undefined && !regionMatches(h, p.regions)) {
      problems.push(`${h.name}: region ${h.region ?? '(none)'} not in ${p.regions.join(', ')}`)
      continue
    }
    if (!fits(h, p.used.get(h.name), p.need)) {
      const u = p.used.get(h.name) ?? { vcpu: 0, memoryGiB: 0, storageGiB: 0 }
      problems.push(
        `${h.name}: free ${fmt(h.capacity.vcpu - u.vcpu)} vCPU, ${fmt(h.capacity.memoryGiB - u.memoryGiB)} GiB memory, ${fmt(h.capacity.storageGiB - u.storageGiB)} GiB storage; need ${fmt(p.need.vcpu)}, ${fmt(p.need.memoryGiB)}, ${fmt(p.need.storageGiB)}`,
      )
      continue
    }
    ok.push(h)
  }
  if (!ok.length) return { ok: false, problems: problems.length ? problems : ['no hosts configured'] }
  ok.sort((a, b) => usd(a.hourlyUsd).cmp(usd(b.hourlyUsd)) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  return { ok: true, hosts: ok }
}

const fmt = (n: number) => String(Math.round(n * 1000) / 1000)
