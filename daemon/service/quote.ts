/**
 * requested → provisioning: validate the request, reduce it to a ResourceSpec, let placement rank every feasible
 * offer, confirm a stale price with the provider, and reserve the first candidate that has room and leaves the
 * operator's margin — in one state update, so concurrent quotes never promise the same capacity twice.
 */
import { faultPoint } from '../../core/faults.js'
import type { Decimal } from '../../core/money.js'
import { tokenToUsd } from '../../core/money.js'
import { reduce, TierNames, type ResourceSpec } from '../../core/spec.js'
import { planTier } from '../../core/tiers.js'
import type { BlueprintSource } from '../../core/source.js'
import { viewOf, type Candidate, type Decision, type Ranking } from '../placement/placement.js'
import { transition, type ServiceRecord } from '../state.js'
import { Rejection, patch, move, type ServiceContext } from './context.js'
import { missingOnChain } from './vanished.js'

/** Candidates whose price is confirmed live before buying, at most (each is one provider API call). */
const MAX_CONFIRMATIONS = 3

export async function quote(ctx: ServiceContext, s: ServiceRecord): Promise<void> {
  const { config } = ctx
  if (config.operator.draining || ctx.draining?.()) throw new Rejection('OPERATOR_DRAINING', ['the operator is draining and takes no new requests'])
  if (s.problems?.length) throw new Rejection('MALFORMED_REQUEST', s.problems)
  const tier = TierNames[s.tierIndex]
  if (!tier) throw new Rejection('MALFORMED_REQUEST', [`tier: got ${s.tierIndex}, expected 0 (basic), 1 (standard) or 2 (premium)`])
  // the customer may have terminated before we got here: never provision what is already over
  const onchain = await ctx.escrow.getService(BigInt(s.serviceId))
  if (!onchain) {
    await missingOnChain(ctx, s.serviceId) // throws until the chain has clearly forgotten it
    return
  }
  if (s.missing)
    await patch(ctx, s.serviceId, (r) => {
      delete r.missing // a lagging node's misses do not count towards a later absence
    })
  if (onchain.state === 'terminated' || onchain.state === 'closed') {
    await move(ctx, s.serviceId, 'terminating', 'ServiceTerminated', (r) => {
      r.reason = 'CUSTOMER_TERMINATED'
    })
    return
  }
  const bp = await ctx.escrow.getBlueprint(BigInt(s.blueprintId))
  if (!bp) throw new Rejection('UNKNOWN_BLUEPRINT', [`blueprint ${s.blueprintId} is not registered`])
  const usable = usableSources(ctx, bp.sources)
  const r = reduce(bp.requirements, s.preferences ?? {}, config.defaults, config.ceilings, tier, config.tiers)
  if (!r.ok) throw new Rejection(r.reason, r.problems)
  const spec = r.spec
  const price = bp.pricePerHour[s.tierIndex]
  if (price === undefined) throw new Rejection('MALFORMED_REQUEST', [`tier ${s.tierIndex} has no price in blueprint ${s.blueprintId}`])
  const priceUsd = tokenToUsd(price, config.token.decimals, config.token.usdPerToken)
  const plan = planTier({ tier, tiers: config.tiers, maxReplicas: config.ceilings.replicas, highAvailability: spec.highAvailability })

  const ranking = ctx.placement.rank({
    spec,
    sources: usable,
    preferences: s.preferences ?? {},
    priceUsd,
    pricedReplicas: plan.pricedReplicas,
    minPriceToCost: config.margin.minPriceToCost,
    maxCostPerHourUsd: config.ceilings.maxCostPerHourUsd,
  })
  const confirmed = await confirmPrices(ctx, ranking, priceUsd, plan.pricedReplicas)
  if (!ranking.candidates.length) throw noCandidate(ranking, s)
  await reserve(ctx, s, spec, ranking, confirmed, plan.pricedReplicas, priceUsd)
}

/** The blueprint's sources this operator may run (testing sources only where allowed). */
function usableSources(ctx: ServiceContext, sources: ReadonlyArray<{ ok: true; source: BlueprintSource } | { ok: false; error: string }>): BlueprintSource[] {
  const allowTesting = ctx.config.providers.local?.allowTestSources ?? false
  const usable: BlueprintSource[] = []
  const problems: string[] = []
  for (const [i, src] of sources.entries()) {
    if (!src.ok) problems.push(`sources[${i}]: ${src.error}`)
    else if (src.source.kind === 'testing' && !allowTesting) problems.push(`sources[${i}]: testing sources are not allowed by this operator`)
    else usable.push(src.source)
  }
  if (!usable.length) throw new Rejection('MALFORMED_REQUEST', problems.length ? problems : ['the blueprint has no sources'])
  return usable
}

/** The rejection when nothing is left: MARGIN_TOO_LOW when margin was what removed the last feasible offers. */
function noCandidate(ranking: Ranking, s: ServiceRecord): Rejection {
  const lines = [...ranking.rejected].sort((a, b) => b[1] - a[1]).map(([why, n]) => `${n} × ${why}`)
  const onlyMargin = [...ranking.rejected.keys()].some((k) => k.startsWith('margin too low'))
  if (s.decision?.attempts.length) return new Rejection('NO_CAPACITY', [...s.decision.attempts.map((a) => `${a.target} ${a.region}/${a.instanceType}: ${a.kind}: ${a.error}`), ...lines])
  return new Rejection(onlyMargin ? 'MARGIN_TOO_LOW' : 'NO_FEASIBLE_OFFER', lines.length ? lines : ['no target can run this blueprint'])
}

/**
 * Cloud candidates whose catalog price is older than `[placement] confirm_price_older_than_ms` are priced live with
 * the account's credentials (Hetzner /pricing, EC2 spot price history), best first, until one is confirmed; a live
 * price that breaks the margin drops the candidate. Returns the confirmed per-replica prices by candidate.
 */
async function confirmPrices(ctx: ServiceContext, ranking: Ranking, priceUsd: Decimal, pricedReplicas: number): Promise<Map<Candidate, Decimal>> {
  const confirmed = new Map<Candidate, Decimal>()
  const maxAge = ctx.placement.settings.confirmPriceOlderThanMs
  let tries = 0
  for (const c of [...ranking.candidates]) {
    if (!c.target.confirmPrice || Date.now() - c.offer.fetchedAt < maxAge) break
    if (tries++ >= MAX_CONFIRMATIONS) break
    let live: Decimal | undefined
    try {
      live = await c.target.confirmPrice(c.offer, c.spot, ctx.common.signal)
    } catch (err) {
      ctx.log.warn({ target: c.target.name, region: c.offer.region, instanceType: c.offer.instanceType, err: (err as Error).message }, 'live price unavailable; using the catalog price')
      break
    }
    if (!live) break
    const listed = c.spot ? (c.offer.spotHourlyUsd ?? c.offer.hourlyUsd) : c.offer.hourlyUsd
    const perReplica = c.perReplicaUsd.minus(listed).plus(live)
    if (priceUsd.lt(perReplica.mul(pricedReplicas).mul(ctx.config.margin.minPriceToCost))) {
      ranking.candidates.splice(ranking.candidates.indexOf(c), 1)
      ranking.rejected.set('margin too low at the live price', (ranking.rejected.get('margin too low at the live price') ?? 0) + 1)
      continue
    }
    confirmed.set(c, perReplica)
    break
  }
  return confirmed
}

/** Walk the candidates in order and reserve the first with room; record quote, decision and the transition. */
async function reserve(ctx: ServiceContext, s: ServiceRecord, spec: ResourceSpec, ranking: Ranking, confirmed: Map<Candidate, Decimal>, pricedReplicas: number, priceUsd: Decimal) {
  const { book } = ctx
  let chosen: { c: Candidate; total: Decimal } | undefined
  try {
    chosen = await ctx.store.update((st) => {
      const rec = st.services[s.serviceId]
      if (!rec || rec.state !== 'requested') return undefined
      const full: string[] = []
      for (const c of ranking.candidates) {
        const t = c.target
        const u = book.usedOn(t.name)
        if (t.capacity) {
          const fits =
            u.vcpu + spec.vcpu * spec.replicas <= t.capacity.vcpu &&
            u.memoryGiB + spec.memoryGiB * spec.replicas <= t.capacity.memoryGiB &&
            u.storageGiB + spec.storageGiB <= t.capacity.storageGiB
          if (!fits) {
            full.push(`${t.name}: not enough free capacity (${t.capacity.vcpu - u.vcpu} vCPU, ${t.capacity.memoryGiB - u.memoryGiB} GiB free)`)
            continue
          }
        }
        if (t.maxInstances !== undefined && u.instances + spec.replicas > t.maxInstances) {
          full.push(`${t.name}: ${u.instances} of ${t.maxInstances} instances in use`)
          continue
        }
        const perReplica = confirmed.get(c) ?? c.perReplicaUsd
        const total = perReplica.mul(spec.replicas)
        const listed = c.spot ? (c.offer.spotHourlyUsd ?? c.offer.hourlyUsd) : c.offer.hourlyUsd
        rec.tier = spec.tier
        rec.spec = spec
        rec.source = c.source
        rec.quote = {
          provider: c.offer.provider,
          target: t.name,
          region: c.offer.region,
          instanceType: c.offer.instanceType,
          ...(t.placement && { placement: t.placement }),
          hourlyUsd: confirmed.has(c) ? perReplica.minus(c.perReplicaUsd.minus(listed)).toFixed() : listed.toFixed(),
          totalHourlyUsd: total.toFixed(),
          replicas: spec.replicas,
          source: c.offer.source,
          ...(c.spot && { spot: true }),
          ...(t.kind === 'cloud' && c.offer.storageUsdPerGiBMonth && { stoppedHourlyUsd: c.offer.storageUsdPerGiBMonth.mul(Math.max(spec.storageGiB, 1)).div(730).toDecimalPlaces(12).toFixed() }),
          ...(confirmed.has(c) && { priceConfirmed: true }),
        }
        rec.decision = decisionOf(ctx, ranking, c, rec.decision?.attempts ?? [], full)
        rec.intent = { op: 'provision', at: new Date().toISOString(), attempt: 0 }
        transition(rec, 'provisioning', 'quoted', { detail: `${t.name} ${c.offer.region}/${c.offer.instanceType} at ${total.toFixed()} USD/h for ${spec.replicas} replica(s) (tier pays ${priceUsd.toFixed()} USD/h, priced at ${pricedReplicas})` })
        book.set(s.serviceId, rec) // seen by the next quote of this same group commit
        return { c, total }
      }
      const lines = [...ranking.rejected].map(([why, n]) => `${n} × ${why}`)
      throw new Rejection(rec.decision?.attempts.length ? 'NO_CAPACITY' : 'NO_FEASIBLE_OFFER', [...full, ...lines])
    })
  } finally {
    book.set(s.serviceId, ctx.store.read().services[s.serviceId])
  }
  if (chosen) {
    ctx.m.transitions.inc({ to: 'provisioning' })
    ctx.log.info({ serviceId: s.serviceId, to: 'provisioning', cause: 'quoted', target: chosen.c.target.name, region: chosen.c.offer.region, instanceType: chosen.c.offer.instanceType, usdPerHour: chosen.total.toFixed(), replicas: spec.replicas, decisionMs: Math.round(ranking.ms * 100) / 100 }, 'provisioning')
    faultPoint('quote.decided')
  }
}

function decisionOf(ctx: ServiceContext, ranking: Ranking, winner: Candidate, attempts: Decision['attempts'], full: string[]): Decision {
  const rejected = new Map(ranking.rejected)
  for (const f of full) rejected.set(f.replace(/ \(.*\)$/, ''), (rejected.get(f) ?? 0) + 1)
  return {
    at: new Date().toISOString(),
    mode: ctx.placement.settings.mode,
    winner: viewOf(winner),
    next: ranking.candidates.filter((c) => c !== winner).slice(0, 5).map(viewOf),
    rejected: [...rejected].sort((a, b) => b[1] - a[1]).map(([reason, count]) => ({ reason, count })),
    attempts,
    ms: Math.round(ranking.ms * 1000) / 1000,
  }
}

