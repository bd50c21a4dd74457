/**
 * ResourceSpec and the decision hierarchy: developer requirements are floors, customer preferences may raise or
 * choose, operator defaults fill gaps, operator ceilings cap (a ceiling below a floor is a rejection).
 */
import type { ReasonCode } from './errors.js'

export const TierNames = ['basic', 'standard', 'premium'] as const
export type TierName = (typeof TierNames)[number]

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

/** One payment tier's scaling policy. */
export type TierPolicy = {
  /** Replicas when active (the HPA minimum). */
  minReplicas: number
  /** Upper bound for autoscaling targets (the HPA maximum). */
  maxReplicas: number
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

  // floor -> raised by preference -> default only where nobody asked for anything
  const pick = (floor: number, pref: number | undefined, def: number) => {
    const asked = Math.max(floor, pref ?? 0)
    return asked > 0 ? asked : def
  }
  const vcpu = pick(requirements.vcpu, preferences.vcpu, defaults.vcpu)
  const memoryGiB = pick(requirements.memoryGiB, preferences.memoryGiB, defaults.memoryGiB)
  const storageGiB = pick(requirements.storageGiB, preferences.storageGiB, defaults.storageGiB)

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
  let replicas = policy.minReplicas
  if (highAvailability) replicas = Math.max(replicas, 2)
  const maxReplicas = Math.max(policy.maxReplicas, replicas)

  const over: string[] = []
  if (vcpu > ceilings.vcpu) over.push(`vcpu ${vcpu} above the operator's ceiling ${ceilings.vcpu}`)
  if (memoryGiB > ceilings.memoryGiB) over.push(`memoryGiB ${memoryGiB} above the operator's ceiling ${ceilings.memoryGiB}`)
  if (storageGiB > ceilings.storageGiB) over.push(`storageGiB ${storageGiB} above the operator's ceiling ${ceilings.storageGiB}`)
  if (requirements.gpu.count > ceilings.gpuCount) over.push(`gpu.count ${requirements.gpu.count} above the operator's ceiling ${ceilings.gpuCount}`)
  if (replicas > ceilings.replicas) over.push(`replicas ${replicas} above the operator's ceiling ${ceilings.replicas}`)
  if (over.length) return { ok: false, reason: 'REQUIREMENTS_ABOVE_CEILING', problems: over }

  const regions = preferences.regions && preferences.regions.length ? [...preferences.regions] : [...defaults.regions]
  return {
    ok: true,
    spec: {
      vcpu,
      memoryGiB,
      storageGiB,
      gpu: { count: requirements.gpu.count, model: requirements.gpu.count > 0 ? gpuModel : undefined },
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
