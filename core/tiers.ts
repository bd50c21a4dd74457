/**
 * The payment-tier policy, one pure function (STYLE.md 12): what a tier runs — replicas while paid, autoscaling
 * bounds, and the per-replica resources it raises — clamped by the operator's ceiling, the room the target has and
 * what the on-chain rate pays for at the operator's margin. Called by `reduce` (at the request) and by the reconcile
 * loop (tier changes, top-ups); nothing else decides a replica count.
 */
import type { Decimal } from './money.js'

export const TierNames = ['basic', 'standard', 'premium'] as const
export type TierName = (typeof TierNames)[number]

/** One payment tier as the operator configures it (`[tiers.<name>]`). */
export type TierPolicy = {
  /** Replicas while active (the autoscaling minimum: what is paid for). */
  minReplicas: number
  /** Upper bound for autoscaling. */
  maxReplicas: number
  /** Per-replica floors the tier raises (seed 004's tiers carry resources); undefined keeps the spec's. */
  vcpu?: number | undefined
  memoryGiB?: number | undefined
  gpuCount?: number | undefined
  /**
   * Replicas the margin check prices a tier for. Default: `maxReplicas` where the tier autoscales (it may run that
   * many), else `minReplicas`.
   */
  pricedReplicas?: number | undefined
}

export type TierPlanParameters = {
  tier: TierName
  tiers: Record<TierName, TierPolicy>
  /** The operator's replica ceiling. */
  maxReplicas: number
  highAvailability: boolean
  /** Replicas the target has room for (undefined: no limit known). */
  fits?: number | undefined
  /** Replicas the on-chain rate pays for at the operator's margin (undefined: not checked). */
  paysFor?: number | undefined
}

export type TierPlan = {
  /** Replicas to run while paid (at least one). */
  replicas: number
  /** Autoscaling bounds (min = what is paid for; max never above the operator's ceiling). */
  minReplicas: number
  maxReplicas: number
  /** Replicas the margin check prices the tier at. */
  pricedReplicas: number
  /** Per-replica resources the tier raises. */
  raise: { vcpu?: number; memoryGiB?: number; gpuCount?: number }
  /** Why fewer replicas than the tier asks run ("capacity", "payment"), for the log. */
  limitedBy: Array<'ceiling' | 'capacity' | 'payment'>
}

/** The tier's plan: replicas, bounds and resources, clamped by ceiling, room and payment (never below one replica). */
export function planTier(p: TierPlanParameters): TierPlan {
  const policy = p.tiers[p.tier]
  const limitedBy: TierPlan['limitedBy'] = []
  let replicas = p.highAvailability ? Math.max(policy.minReplicas, 2) : policy.minReplicas
  if (replicas > p.maxReplicas) {
    replicas = p.maxReplicas
    limitedBy.push('ceiling')
  }
  const fits = p.fits === undefined ? Infinity : Math.max(1, Math.floor(p.fits))
  if (fits < replicas) {
    replicas = fits
    limitedBy.push('capacity')
  }
  const pays = p.paysFor === undefined ? Infinity : Math.max(1, Math.floor(p.paysFor))
  if (pays < replicas) {
    replicas = pays
    limitedBy.push('payment')
  }
  replicas = Math.max(1, replicas)
  const maxReplicas = Math.max(replicas, Math.min(policy.maxReplicas, p.maxReplicas, fits, pays))
  const autoscales = policy.maxReplicas > policy.minReplicas
  const pricedReplicas = Math.min(p.maxReplicas, Math.max(replicas, policy.pricedReplicas ?? (autoscales ? policy.maxReplicas : replicas)))
  const raise: TierPlan['raise'] = {}
  if (policy.vcpu !== undefined) raise.vcpu = policy.vcpu
  if (policy.memoryGiB !== undefined) raise.memoryGiB = policy.memoryGiB
  if (policy.gpuCount !== undefined) raise.gpuCount = policy.gpuCount
  return { replicas, minReplicas: replicas, maxReplicas, pricedReplicas, raise, limitedBy }
}

/**
 * Replicas an hourly rate pays for at the operator's margin: floor(rate / (cost per replica × ratio)). A ratio of 0
 * (margin disabled) or a free replica pays for any number (Infinity).
 */
export function replicasPaidFor(rateUsdPerHour: Decimal, costPerReplicaUsd: Decimal, minPriceToCost: Decimal): number {
  const need = costPerReplicaUsd.mul(minPriceToCost)
  if (need.lte(0)) return Infinity
  return rateUsdPerHour.div(need).floor().toNumber()
}
