/**
 * ResourceSpec and the decision hierarchy: developer requirements are floors, customer preferences may raise or
 * choose, operator defaults fill gaps, operator ceilings cap (a ceiling below a floor is a rejection).
 */
import type { ReasonCode } from './errors.js'
import { planTier, type TierName, type TierPolicy } from './tiers.js'

export { TierNames, type TierName, type TierPolicy } from './tiers.js'

export type Gpu = {
  /** Number of GPUs; 0 means none. */
  count: number
  /** Model such as "A100"; undefined means any model. Compared case-insensitively. */
  model?: string | undefined
}

/** The blueprint developer's hard requirements (floors). */
export type Requirements = {
  vcpu: number
  memoryGiB: number
  storageGiB: number
  gpu: Gpu
  ports: number[]
}

/** The customer's preferences, all optional. */
export type Preferences = {
  /** Regions the customer accepts (provider region names or broad prefixes such as "eu", "us"). */
  regions?: string[] | undefined
  highAvailability?: boolean | undefined
  /** Whether spot/preemptible capacity is acceptable. */
  spotAllowed?: boolean | undefined
  /** Raise the floors (never lowers them). */
  vcpu?: number | undefined
  memoryGiB?: number | undefined
  storageGiB?: number | undefined
  gpuModel?: string | undefined
  /** Providers the customer accepts ("own", "aws", "hetzner", ...); empty or undefined = any. */
  providers?: string[] | undefined
  /** Providers the customer refuses. */
  excludeProviders?: string[] | undefined
}

/** The operator's defaults (fill what nobody specified). */
export type OperatorDefaults = {
  vcpu: number
  memoryGiB: number
  storageGiB: number
  regions: string[]
  spotAllowed: boolean
}

/** The operator's hard caps. */
export type Ceilings = {
  vcpu: number
  memoryGiB: number
  storageGiB: number
  gpuCount: number
  replicas: number
}

export type ResourceSpec = {
  vcpu: number
  memoryGiB: number
  storageGiB: number
  gpu: Gpu
  /** Replicas to run while the service is paid. */
  replicas: number
  /** Autoscaling bounds for targets that autoscale (Kubernetes HPA). */
  minReplicas: number
  maxReplicas: number
  /** Empty means any region. */
  regions: string[]
  spotAllowed: boolean
  highAvailability: boolean
  ports: number[]
  tier: TierName
}

export type ReduceResult =
  | { ok: true; spec: ResourceSpec }
  | { ok: false; reason: ReasonCode; problems: string[] }

const finitePos = (n: number) => Number.isFinite(n) && n >= 0

/**
 * Reduce requirements × preferences × operator defaults × ceilings × tier into one ResourceSpec.
 * Pure and total: never throws; invalid numbers are a MALFORMED_REQUEST rejection.
 */
export function reduce(
  requirements: Requirements,
  preferences: Preferences,
  defaults: OperatorDefaults,
  ceilings: Ceilings,
  tier: TierName,
  tiers: Record<TierName, TierPolicy>,
): ReduceResult {
  const malformed: string[] = []
  for (const [k, v] of [
    ['requirements.vcpu', requirements.vcpu],
    ['requirements.memoryGiB', requirements.memoryGiB],
    ['requirements.storageGiB', requirements.storageGiB],
    ['requirements.gpu.count', requirements.gpu.count],
    ['preferences.vcpu', preferences.vcpu ?? 0],
    ['preferences.memoryGiB', preferences.memoryGiB ?? 0],
    ['preferences.storageGiB', preferences.storageGiB ?? 0],
  ] as const) {
    if (!finitePos(v)) malformed.push(`${k}: got ${v}, expected a finite number >= 0`)
  }
  if (!Number.isInteger(requirements.gpu.count)) malformed.push(`requirements.gpu.count: got ${requirements.gpu.count}, expected an integer`)
  for (const p of requirements.ports) {
    if (!Number.isInteger(p) || p < 1 || p > 65535) malformed.push(`requirements.ports: got ${p}, expected 1..65535`)
  }
  const policy = tiers[tier]
  if (!policy) malformed.push(`tier: got ${JSON.stringify(tier)}, expected one of ${Object.keys(tiers).join(', ')}`)
  if (malformed.length || !policy) return { ok: false, reason: 'MALFORMED_REQUEST', problems: malformed }

  // floor -> raised by preference (and by the tier) -> default only where nobody asked for anything
  const plan = planTier({ tier, tiers, maxReplicas: Number.MAX_SAFE_INTEGER, highAvailability: preferences.highAvailability ?? false })
  const pick = (floor: number, pref: number | undefined, def: number, tierRaise: number | undefined) => {
    const asked = Math.max(floor, pref ?? 0)
    return Math.max(asked > 0 ? asked : def, tierRaise ?? 0)
  }
  const vcpu = pick(requirements.vcpu, preferences.vcpu, defaults.vcpu, plan.raise.vcpu)
  const memoryGiB = pick(requirements.memoryGiB, preferences.memoryGiB, defaults.memoryGiB, plan.raise.memoryGiB)
  const storageGiB = pick(requirements.storageGiB, preferences.storageGiB, defaults.storageGiB, undefined)
  const gpuCount = Math.max(requirements.gpu.count, requirements.gpu.count > 0 ? (plan.raise.gpuCount ?? 0) : 0)

  let gpuModel = requirements.gpu.model || undefined
  const problems: string[] = []
  if (preferences.gpuModel) {
    if (gpuModel && gpuModel.toLowerCase() !== preferences.gpuModel.toLowerCase()) {
      // the developer's model is a hard requirement; a customer cannot swap it
      problems.push(`preferences.gpuModel ${preferences.gpuModel} conflicts with the blueprint's required ${gpuModel}`)
    } else if (requirements.gpu.count > 0) gpuModel = preferences.gpuModel
  }
  if (problems.length) return { ok: false, reason: 'MALFORMED_REQUEST', problems }

  const highAvailability = preferences.highAvailability ?? false
  const replicas = plan.replicas
  const maxReplicas = plan.maxReplicas

  const over: string[] = []
  if (vcpu > ceilings.vcpu) over.push(`vcpu ${vcpu} above the operator's ceiling ${ceilings.vcpu}`)
  if (memoryGiB > ceilings.memoryGiB) over.push(`memoryGiB ${memoryGiB} above the operator's ceiling ${ceilings.memoryGiB}`)
  if (storageGiB > ceilings.storageGiB) over.push(`storageGiB ${storageGiB} above the operator's ceiling ${ceilings.storageGiB}`)
  if (gpuCount > ceilings.gpuCount) over.push(`gpu.count ${gpuCount} above the operator's ceiling ${ceilings.gpuCount}`)
  if (replicas > ceilings.replicas) over.push(`replicas ${replicas} above the operator's ceiling ${ceilings.replicas}`)
  if (over.length) return { ok: false, reason: 'REQUIREMENTS_ABOVE_CEILING', problems: over }

  const regions = preferences.regions && preferences.regions.length ? [...preferences.regions] : [...defaults.regions]
  return {
    ok: true,
    spec: {
      vcpu,
      memoryGiB,
      storageGiB,
      gpu: { count: gpuCount, model: gpuCount > 0 ? gpuModel : undefined },
      replicas,
      minReplicas: replicas,
      maxReplicas: Math.min(maxReplicas, ceilings.replicas),
      regions,
      spotAllowed: preferences.spotAllowed ?? defaults.spotAllowed,
      highAvailability,
      ports: [...new Set(requirements.ports)].sort((a, b) => a - b),
      tier,
    },
  }
}
