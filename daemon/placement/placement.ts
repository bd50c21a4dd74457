/**
 * Placement, the one place the daemon decides where a service runs: candidates are the own targets' offers and the
 * catalog's offers of every cloud the operator enabled with credentials; the blueprint's requirements (in the spec),
 * the customer's preferences (regions, providers, spot) and the operator's ceilings and mode filter them; price
 * decides. Offers that failed with a capacity/quota/region/price/auth error are blocked for a cooldown (failover, as
 * SkyPilot does across zones and clouds). The decision — winner, runners-up, and each class of rejected offers with
 * its count — is kept with the service.
 */
import type { Common } from '../../core/common.js'
import type { Decimal } from '../../core/money.js'
import type { Offer } from '../../core/offer.js'
import type { Preferences, ResourceSpec } from '../../core/spec.js'
import type { BlueprintSource } from '../../core/source.js'
import { cheapest } from '../../pricing/select.js'
import { regionMatches } from '../../pricing/regions.js'
import type { Target, TargetRegistry } from '../ports.js'
import type { FailoverClass } from './failover.js'

export type PlacementMode = 'cheapest' | 'preferred' | 'own'

export type PlacementSettings = {
  mode: PlacementMode
  /** `preferred`: providers in order of preference ("own", "aws", "hetzner", ...). */
  providers: string[]
  /** Offers tried for one request before it is refunded with NO_CAPACITY. */
  maxAttempts: number
  /** How long a failed offer (region, provider) stays blocked, ms. */
  cooldownMs: number
  /** A catalog price older than this is confirmed with the provider's live price before buying, ms. */
  confirmPriceOlderThanMs: number
  /** Candidates kept per target when ranking (the rest only count). */
  perTarget: number
}

export type Candidate = {
  target: Target
  source: BlueprintSource
  offer: Offer
  spot: boolean
  /** USD per replica-hour (host, GPU, storage, IPv4). */
  perReplicaUsd: Decimal
  /** perReplicaUsd × the spec's replicas. */
  totalUsd: Decimal
}

/** A candidate as kept in the decision record and shown by the API and `quote --explain`. */
export type CandidateView = { target: string; provider: string; region: string; instanceType: string; source: string; spot: boolean; perReplicaUsd: string; totalHourlyUsd: string }

export type PlacementAttempt = { target: string; provider: string; region: string; instanceType: string; hourlyUsd: string; kind: string; error: string; at: string }

export type Decision = {
  at: string
  mode: PlacementMode
  winner?: CandidateView
  /** The next candidates after the winner, cheapest first. */
  next: CandidateView[]
  /** Each class of rejected offers, with how many were rejected for it. */
  rejected: Array<{ reason: string; count: number }>
  /** Offers tried and failed over (provisioning errors of the failover class). */
  attempts: PlacementAttempt[]
  /** Time the ranking took, ms. */
  ms: number
}

export type RankInput = {
  spec: ResourceSpec
  sources: readonly BlueprintSource[]
  preferences: Preferences
  /** The tier's hourly price in USD (margin check), and the replicas it is priced at. */
  priceUsd?: Decimal
  pricedReplicas?: number
  minPriceToCost?: Decimal
  maxCostPerHourUsd?: Decimal
}

export type Ranking = { candidates: Candidate[]; rejected: Map<string, number>; ms: number }

export type Block = { provider: string; region?: string; instanceType?: string; until: number; kind: string; reason: string }

export type Placement = {
  /** Every feasible candidate, best first, and the classes of rejected offers. Pure except for the blocks it reads. */
  rank(input: RankInput): Ranking
  /** Block an offer (or its region, or its provider) after a failover-class provisioning error. */
  block(at: { provider: string; target: string; region: string; instanceType: string }, f: FailoverClass, reason: string): void
  /** Why a candidate is blocked now, if it is. */
  blockedBy(c: { provider: string; region: string; instanceType: string }): Block | undefined
  blocks(): Block[]
  settings: Readonly<PlacementSettings>
}

/** When a block ends, for humans: an ISO time, or "the config changes" for an auth block. */
export const untilText = (until: number) => (Number.isFinite(until) ? new Date(until).toISOString() : 'the config changes')

export const viewOf = (c: Candidate): CandidateView => ({
  target: c.target.name,
  provider: c.offer.provider,
  region: c.offer.region,
  instanceType: c.offer.instanceType,
  source: c.offer.source,
  spot: c.spot,
  perReplicaUsd: c.perReplicaUsd.toFixed(),
  totalHourlyUsd: c.totalUsd.toFixed(),
})

/** The first rule an offer breaks for `spec`, as a class name (counted in the decision). */
export function rejectionOf(spec: ResourceSpec, o: Offer, regionOk: (o: Offer) => boolean = regionTester(spec)): string | undefined {
  if (o.vcpu < spec.vcpu) return 'too few vCPU'
  if (o.memoryGiB < spec.memoryGiB) return 'too little memory'
  if (spec.gpu.count > 0 && o.gpu.count < spec.gpu.count) return 'too few GPUs'
  if (!regionOk(o)) return "region not in the customer's preference"
  return undefined
}

/** Whether an offer's region is in the spec's, memoized per provider/region/zone (a catalog has few distinct ones). */
function regionTester(spec: ResourceSpec): (o: Offer) => boolean {
  if (!spec.regions.length) return () => true
  const seen = new Map<string, boolean>()
  return (o) => {
    const k = `${o.provider}|${o.region}|${o.zone ?? ''}`
    let ok = seen.get(k)
    if (ok === undefined) seen.set(k, (ok = spec.regions.some((w) => regionMatches(w, o.provider, o.region, o.zone))))
    return ok
  }
}

/** Count every offer by the first rule it breaks (one pass over the target's offers). */
function countRejections(spec: ResourceSpec, offers: readonly Offer[], bump: (reason: string, n?: number) => void): number {
  const regionOk = regionTester(spec)
  const counts = new Map<string, number>()
  let n = 0
  for (const o of offers) {
    const why = rejectionOf(spec, o, regionOk)
    if (why) {
      counts.set(why, (counts.get(why) ?? 0) + 1)
      n++
    }
  }
  for (const [why, c] of counts) bump(why, c)
  return n
}

export type CreatePlacementParameters = { settings: PlacementSettings; targets: TargetRegistry; now?: () => number }

export function createPlacement(common: Common, p: CreatePlacementParameters): Placement {
  const now = p.now ?? Date.now
  const blocks: Block[] = []
  const active = () => {
    const t = now()
    for (let i = blocks.length - 1; i >= 0; i--) if (blocks[i]!.until <= t) blocks.splice(i, 1)
    return blocks
  }
  const blockedBy = (c: { provider: string; region: string; instanceType: string }) =>
    active().find((b) => b.provider === c.provider && (b.region === undefined || b.region === c.region) && (b.instanceType === undefined || b.instanceType === c.instanceType))

  function allowedTargets(prefs: Preferences, bump: (reason: string, n?: number) => void): Target[] {
    const s = p.settings
    let list = [...p.targets.list()]
    if (s.mode === 'own') {
      const clouds = list.filter((t) => t.kind !== 'own')
      if (clouds.length) bump('placement mode "own": clouds not used', clouds.length)
      list = list.filter((t) => t.kind === 'own')
    }
    if (s.mode === 'preferred' && s.providers.length) {
      const named = (t: Target) => s.providers.includes(t.provider) || s.providers.includes(t.name)
      const outside = list.filter((t) => !named(t))
      if (outside.length) bump('provider not in [placement] providers', outside.length)
      list = list.filter(named)
    }
    const allow = prefs.providers?.map((x) => x.toLowerCase())
    const deny = prefs.excludeProviders?.map((x) => x.toLowerCase())
    return list.filter((t) => {
      if (allow?.length && !allow.includes(t.provider)) return bump("provider not in the customer's providers"), false
      if (deny?.includes(t.provider)) return bump('provider excluded by the customer'), false
      return true
    })
  }

  function rank(input: RankInput): Ranking {
    const t0 = performance.now()
    const { spec } = input
    const rejected = new Map<string, number>()
    const bump = (reason: string, n = 1) => void rejected.set(reason, (rejected.get(reason) ?? 0) + n)
    const out: Candidate[] = []
    for (const t of allowedTargets(input.preferences, bump)) {
      const source = input.sources.find((s) => t.sourceKinds.includes(s.kind))
      if (!source) {
        bump(`${t.name} runs no ${[...new Set(input.sources.map((s) => s.kind))].join('/')} sources`)
        continue
      }
      const offers = t.offersFor(spec)
      if (!offers.length) continue
      const res = cheapest(spec, offers, { maxCostPerHourUsd: input.maxCostPerHourUsd, top: p.settings.perTarget })
      if (!res.ok) {
        const counted = countRejections(spec, offers, bump)
        if (counted < offers.length) for (const n of res.nearest.slice(0, 1)) bump(`${t.name}: ${n.why[0] ?? 'infeasible'}`, offers.length - counted)
        continue
      }
      countRejections(spec, offers, bump)
      for (const q of [res.quote, ...res.alternatives]) {
        out.push({ target: t, source, offer: q.offer, spot: q.spot, perReplicaUsd: q.breakdown.perReplicaUsd, totalUsd: q.breakdown.totalUsd })
      }
    }
    const order = p.settings.mode === 'preferred' ? p.settings.providers : []
    const pref = (c: Candidate) => (order.length ? Math.max(order.indexOf(c.target.name), order.indexOf(c.target.provider)) : 0)
    out.sort((a, b) => pref(a) - pref(b) || a.totalUsd.cmp(b.totalUsd) || a.target.name.localeCompare(b.target.name) || a.offer.region.localeCompare(b.offer.region) || a.offer.instanceType.localeCompare(b.offer.instanceType))
    const kept: Candidate[] = []
    for (const c of out) {
      const b = blockedBy({ provider: c.offer.provider, region: c.offer.region, instanceType: c.offer.instanceType })
      if (b) {
        bump(`blocked after a failed attempt (${b.kind}, until ${untilText(b.until)})`)
        continue
      }
      if (input.priceUsd && input.minPriceToCost) {
        const cost = c.perReplicaUsd.mul(input.pricedReplicas ?? spec.replicas)
        if (input.priceUsd.lt(cost.mul(input.minPriceToCost))) {
          bump('margin too low at the tier price')
          continue
        }
      }
      kept.push(c)
    }
    return { candidates: kept, rejected, ms: performance.now() - t0 }
  }

  return {
    rank,
    block(at, f, reason) {
      // an auth error disables the provider until its config changes (a restart with new credentials)
      const until = f.kind === 'auth' ? Number.POSITIVE_INFINITY : now() + p.settings.cooldownMs
      const b: Block =
        f.scope === 'provider'
          ? { provider: at.provider, until, kind: f.kind, reason }
          : f.scope === 'region'
            ? { provider: at.provider, region: at.region, until, kind: f.kind, reason }
            : { provider: at.provider, region: at.region, instanceType: at.instanceType, until, kind: f.kind, reason }
      blocks.push(b)
      common.logger.warn({ provider: b.provider, region: b.region, instanceType: b.instanceType, kind: f.kind, until: untilText(until) }, f.kind === 'auth' ? 'provider disabled until its credentials change' : 'offer blocked after a provisioning error')
    },
    blockedBy,
    blocks: () => [...active()],
    settings: p.settings,
  }
}
