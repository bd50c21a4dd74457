/**
 * Load-based autoscaling within a tier's bounds, as one pure function (the policy Kubernetes' HPA follows, for every
 * target): replicas = ceil(load / target) where load is the replicas' CPU use in vCPU-per-replica units, kept between
 * the tier's minimum (what is paid for) and maximum, with a tolerance band and stabilisation windows — scale up only on
 * load that lasted the scale-up window, scale down only once load stayed low for the whole scale-down window.
 * Scale to zero on expiry is decided by the reconcile loop and wins over anything this returns.
 */

/** One reading of a deployment's CPU counters (the shape of provisioners' DeploymentStatus.usage). */
export type CpuReading = {
  /** ms since the epoch. */
  at: number
  replicas: readonly { index: number; id: string; cpuSeconds: number }[]
}

/** Utilisation of a deployment over an interval. */
export type UtilisationSample = {
  /** End of the interval, ms since the epoch. */
  at: number
  /** Mean over the measured replicas of CPU time / elapsed time / vCPU per replica (1 = every vCPU busy; may exceed 1). */
  utilisation: number
  /** Replicas running when it was measured (the load is `utilisation × replicas` replica-equivalents). */
  replicas: number
}

/**
 * Utilisation between two readings: replicas matched by index and incarnation id (a restarted replica's counter
 * starts again and is left out), each replica's CPU seconds over the elapsed seconds over `vcpuPerReplica` (taken
 * as 1 when the spec sets no CPU limit), averaged. Undefined when no replica can be compared or no time passed.
 */
export function utilisationBetween(prev: CpuReading, cur: CpuReading, vcpuPerReplica: number, replicas: number = cur.replicas.length): UtilisationSample | undefined {
  const seconds = (cur.at - prev.at) / 1000
  if (!(seconds > 0)) return undefined
  const vcpu = vcpuPerReplica > 0 ? vcpuPerReplica : 1
  const before = new Map(prev.replicas.map((r) => [`${r.index}\0${r.id}`, r.cpuSeconds]))
  const each: number[] = []
  for (const r of cur.replicas) {
    const b = before.get(`${r.index}\0${r.id}`)
    if (b === undefined || r.cpuSeconds < b) continue
    each.push((r.cpuSeconds - b) / seconds / vcpu)
  }
  if (!each.length) return undefined
  return { at: cur.at, utilisation: each.reduce((a, b) => a + b, 0) / each.length, replicas: Math.max(replicas, each.length) }
}

export type AutoscaleParameters = {
  /** The tier's replicas: what the customer pays for; never fewer. */
  min: number
  /** The tier's maximum replicas; never more. */
  max: number
  /** Replicas wanted now. */
  current: number
  /** Utilisation samples, oldest first; keep at least one older than the longer window (earlier ones are ignored). */
  samples: readonly UtilisationSample[]
  /** ms since the epoch. */
  now: number
  /** Target utilisation per replica, 0 < target (e.g. 0.6). */
  target: number
  /** Load must call for more replicas over this whole window before scaling up, ms (0: the latest sample decides). */
  scaleUpWindowMs: number
  /** Load must call for fewer replicas over this whole window before scaling down, ms. */
  scaleDownWindowMs: number
  /** A ratio of load to target within 1 ± tolerance changes nothing. Default 0.1. */
  tolerance?: number
  /** Samples older than this (relative to `now`) mean no data: nothing changes but the bounds. Default 120_000. */
  maxSampleAgeMs?: number
  /** Most replicas one decision adds: default max(current, 4) (at most doubling, as Kubernetes' default). */
  maxStepUp?: number
}

export type AutoscaleDecision = {
  replicas: number
  /** 'bounds' (current was outside min..max), 'up', 'down', 'steady', 'no-data'. */
  reason: 'bounds' | 'up' | 'down' | 'steady' | 'no-data'
  /** The latest sample's load in replica-equivalents at the target (utilisation × replicas / target). */
  wanted?: number
}

const clamp = (n: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, n))

/** The replica count the load calls for, within the tier's bounds (see the module comment). Throws on bad bounds. */
export function desiredReplicas(p: AutoscaleParameters): AutoscaleDecision {
  const { min, max, current, target } = p
  if (!(Number.isInteger(min) && Number.isInteger(max) && min >= 0 && max >= min)) throw new RangeError(`autoscale bounds: got min ${min}, max ${max}`)
  if (!(target > 0)) throw new RangeError(`autoscale target: got ${target}, expected > 0`)
  const tolerance = p.tolerance ?? 0.1
  const bounded = clamp(current, min, max)
  const maxAge = p.maxSampleAgeMs ?? 120_000
  const recent = p.samples.filter((s) => Number.isFinite(s.utilisation) && s.utilisation >= 0 && s.replicas > 0 && s.at <= p.now)
  const latest = recent.at(-1)
  if (!latest || p.now - latest.at > maxAge) return { replicas: bounded, reason: bounded !== current ? 'bounds' : 'no-data' }

  /** What one sample calls for: the replicas that bring utilisation to the target, unchanged inside the tolerance. */
  const recommend = (s: UtilisationSample) => {
    const ratio = s.utilisation / target
    if (Math.abs(ratio - 1) <= tolerance) return s.replicas
    return Math.ceil(s.utilisation * s.replicas / target - 1e-9)
  }
  const inWindow = (ms: number) => {
    const since = p.now - ms
    const within = recent.filter((s) => s.at >= since)
    // the window counts only once the history reaches back over it (a sample at or before its start)
    const covered = ms <= 0 || recent.some((s) => s.at <= since)
    return { recs: (within.length ? within : [latest]).map(recommend), covered }
  }
  const wanted = (latest.utilisation * latest.replicas) / target
  const up = inWindow(p.scaleUpWindowMs)
  const upTo = clamp(Math.min(...up.recs), min, max)
  if (up.covered && upTo > bounded) {
    const step = p.maxStepUp ?? Math.max(bounded, 4)
    return { replicas: Math.min(upTo, bounded + step), reason: 'up', wanted }
  }
  const down = inWindow(p.scaleDownWindowMs)
  const downTo = clamp(Math.max(...down.recs), min, max)
  if (down.covered && downTo < bounded) return { replicas: downTo, reason: 'down', wanted }
  return { replicas: bounded, reason: bounded !== current ? 'bounds' : 'steady', wanted }
}
