/**
 * cheapest(spec, offers, policy): the cheapest feasible offer for a spec, with its hourly cost breakdown, or the
 * reasons the nearest candidates failed.
 *
 * Speed: the offers are indexed once per array (columns in typed arrays, regions and GPU models interned; kept in a
 * WeakMap), so a query is one tight loop. Money: the loop ranks by a binary-float estimate only to find the few
 * best candidates (everything within 1e-9 relative of the k-th best is kept, so exact ties are never lost); the
 * winners are then priced, compared and reported in Decimal.
 *
 * Rules: vCPU, memory and GPU count are floors; a GPU model matches case- and punctuation-insensitively
 * ("A100-80GB" = "a100 80gb", never "A100"); regions as in regions.ts (empty = any); spot prices only when the spec
 * allows spot and they are cheaper; storage beyond what the offer includes is priced per GiB-month / 730 h and is
 * infeasible when the offer has no storage price or less free storage; a public IPv4 is charged when the spec
 * exposes ports, and an offer that cannot have one (`ipv4Unavailable`: a ThreeFold farm with none free) is then infeasible; `maxCostPerHourUsd` caps the total over all replicas. Ties: total, on-demand before spot,
 * provider, region, zone, instance type, source, then position in the catalog.
 */
import { Decimal } from 'decimal.js'
import { Usd, ZERO_USD } from '../core/money.js'
import type { CostBreakdown, Offer, ProviderId, Quote } from '../core/offer.js'
import type { ResourceSpec } from '../core/spec.js'
import { gpuKey } from './gpu.js'
import { regionMatches } from './regions.js'
import type { OfferWithGpuPart } from './sources/types.js'

export type SelectPolicy = {
  /** Providers the operator enabled; undefined = all. */
  providers?: ProviderId[] | undefined
  /** Ceiling on the total hourly cost (all replicas), USD. */
  maxCostPerHourUsd?: Decimal | undefined
  /** How many quotes to return in all (the best plus alternatives), rounded down, at least 1. Default 3. */
  top?: number | undefined
}

export type SelectResult =
  | { ok: true; quote: Quote; alternatives: Quote[] }
  | { ok: false; reason: 'NO_FEASIBLE_OFFER'; nearest: Array<{ offer: Offer; why: string[] }> }

/** Offers may carry the largest storage they can hold (ThreeFold nodes' free SSD), GiB. */
type IndexedOffer = OfferWithGpuPart & { maxStorageGiB?: number }

const HOURS_PER_MONTH = 730

type Index = {
  n: number
  vcpu: Float64Array
  mem: Float64Array
  gpuCount: Float64Array
  gpuModel: Int32Array
  provider: Uint8Array
  place: Int32Array
  hourly: Float64Array
  spot: Float64Array
  inclStorage: Float64Array
  storageHourlyPerGiB: Float64Array
  ipv4: Float64Array
  /** Public IPv4 addresses the offer can have (0: none, Infinity: unknown); a replica needs one when ports are exposed. */
  ipv4Free: Float64Array
  maxStorage: Float64Array
  gpuModels: Map<string, number>
  providers: Map<ProviderId, number>
  places: Array<{ provider: ProviderId; region: string; zone: string | undefined }>
  regionCache: Map<string, Uint8Array>
  /** Position in the offers array of each indexed row (rows are sorted by `lb`). */
  orig: Int32Array
  /** Lower bound of any quote's cost per replica: min(on-demand, spot). */
  lb: Float64Array
}

const indexes = new WeakMap<readonly Offer[], Index>()

function buildIndex(offers: readonly Offer[]): Index {
  const n = offers.length
  const ix: Index = {
    n,
    vcpu: new Float64Array(n),
    mem: new Float64Array(n),
    gpuCount: new Float64Array(n),
    gpuModel: new Int32Array(n),
    provider: new Uint8Array(n),
    place: new Int32Array(n),
    hourly: new Float64Array(n),
    spot: new Float64Array(n),
    inclStorage: new Float64Array(n),
    storageHourlyPerGiB: new Float64Array(n),
    ipv4: new Float64Array(n),
    ipv4Free: new Float64Array(n),
    maxStorage: new Float64Array(n),
    gpuModels: new Map(),
    providers: new Map(),
    places: [],
    regionCache: new Map(),
    orig: new Int32Array(n),
    lb: new Float64Array(n),
  }
  const placeIds = new Map<string, number>()
  for (let i = 0; i < n; i++) {
    const o = offers[i] as IndexedOffer
    ix.vcpu[i] = o.vcpu
    ix.mem[i] = o.memoryGiB
    ix.gpuCount[i] = o.gpu.count
    if (o.gpu.model) {
      const k = gpuKey(o.gpu.model)
      let id = ix.gpuModels.get(k)
      if (id === undefined) ix.gpuModels.set(k, (id = ix.gpuModels.size))
      ix.gpuModel[i] = id
    } else ix.gpuModel[i] = -1
    let p = ix.providers.get(o.provider)
    if (p === undefined) ix.providers.set(o.provider, (p = ix.providers.size))
    ix.provider[i] = p
    const pk = `${o.provider}|${o.region}|${o.zone ?? ''}`
    let pl = placeIds.get(pk)
    if (pl === undefined) {
      placeIds.set(pk, (pl = ix.places.length))
      ix.places.push({ provider: o.provider, region: o.region, zone: o.zone })
    }
    ix.place[i] = pl
    ix.hourly[i] = o.hourlyUsd.toNumber()
    ix.spot[i] = o.spotHourlyUsd ? o.spotHourlyUsd.toNumber() : NaN
    ix.inclStorage[i] = o.includedStorageGiB
    ix.storageHourlyPerGiB[i] = o.storageUsdPerGiBMonth ? o.storageUsdPerGiBMonth.toNumber() / HOURS_PER_MONTH : NaN
    ix.ipv4[i] = o.ipv4HourlyUsd ? o.ipv4HourlyUsd.toNumber() : 0
    ix.ipv4Free[i] = o.ipv4Unavailable ? 0 : (o.ipv4Free ?? Infinity)
    ix.maxStorage[i] = o.maxStorageGiB ?? Infinity
    const s = ix.spot[i]!
    ix.lb[i] = s < ix.hourly[i]! ? s : ix.hourly[i]!
  }
  // rows sorted by their lower bound let a query stop as soon as no later row can beat the k-th best found
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => ix.lb[a]! - ix.lb[b]! || a - b)
  const permute = <T extends Float64Array | Int32Array | Uint8Array>(col: T): T => {
    const out = new (col.constructor as new (n: number) => T)(n)
    for (let j = 0; j < n; j++) out[j] = col[order[j]!]!
    return out
  }
  return {
    ...ix,
    vcpu: permute(ix.vcpu),
    mem: permute(ix.mem),
    gpuCount: permute(ix.gpuCount),
    gpuModel: permute(ix.gpuModel),
    provider: permute(ix.provider),
    place: permute(ix.place),
    hourly: permute(ix.hourly),
    spot: permute(ix.spot),
    inclStorage: permute(ix.inclStorage),
    storageHourlyPerGiB: permute(ix.storageHourlyPerGiB),
    ipv4: permute(ix.ipv4),
    ipv4Free: permute(ix.ipv4Free),
    maxStorage: permute(ix.maxStorage),
    lb: permute(ix.lb),
    orig: Int32Array.from(order),
  }
}

function indexOf(offers: readonly Offer[]): Index {
  let ix = indexes.get(offers)
  if (!ix || ix.n !== offers.length) {
    ix = buildIndex(offers)
    indexes.set(offers, ix)
  }
  return ix
}

/** Build the index of an offers array ahead of the first query (optional; `cheapest` builds it on demand). */
export function prepareOffers(offers: readonly Offer[]): void {
  indexOf(offers)
}

function allowedPlaces(ix: Index, regions: readonly string[]): Uint8Array | undefined {
  const wanted = regions.map((r) => r.trim()).filter(Boolean)
  if (!wanted.length) return undefined
  const key = wanted.join('\u0000').toLowerCase()
  let m = ix.regionCache.get(key)
  if (!m) {
    m = new Uint8Array(ix.places.length)
    ix.places.forEach((p, i) => {
      m![i] = wanted.some((w) => regionMatches(w, p.provider, p.region, p.zone)) ? 1 : 0
    })
    if (ix.regionCache.size > 256) ix.regionCache.clear()
    ix.regionCache.set(key, m)
  }
  return m
}

/** Exact quote of one offer for a spec (Decimal); `spot` chooses the spot price. */
export function quoteOffer(offer: Offer, spec: ResourceSpec, spot: boolean): Quote {
  const o = offer as IndexedOffer
  const price = spot && o.spotHourlyUsd ? o.spotHourlyUsd : o.hourlyUsd
  const gpuUsd = (spot ? o.gpuSpotHourlyUsd : o.gpuHourlyUsd) ?? ZERO_USD
  const extra = Math.max(0, spec.storageGiB - o.includedStorageGiB)
  const storageUsd = extra > 0 && o.storageUsdPerGiBMonth ? new Usd(extra).mul(o.storageUsdPerGiBMonth).div(HOURS_PER_MONTH) : new Usd(0)
  const ipv4Usd = spec.ports.length > 0 && o.ipv4HourlyUsd ? new Usd(o.ipv4HourlyUsd) : new Usd(0)
  const hostUsd = new Usd(price).sub(gpuUsd)
  const perReplicaUsd = hostUsd.add(gpuUsd).add(storageUsd).add(ipv4Usd)
  const breakdown: CostBreakdown = {
    hostUsd,
    gpuUsd: new Usd(gpuUsd),
    storageUsd,
    ipv4Usd,
    perReplicaUsd,
    totalUsd: perReplicaUsd.mul(spec.replicas),
  }
  return { offer, spec, spot: spot && Boolean(o.spotHourlyUsd), replicas: spec.replicas, breakdown }
}

const cmpStr = (a: string | undefined, b: string | undefined) => ((a ?? '') < (b ?? '') ? -1 : (a ?? '') > (b ?? '') ? 1 : 0)

/** The cheapest feasible offer for `spec`, with up to `top - 1` alternatives; or why the nearest ones fail. */
export function cheapest(spec: ResourceSpec, offers: readonly Offer[], policy: SelectPolicy = {}): SelectResult {
  const ix = indexOf(offers)
  // whole quotes only: a fractional top made prune() read past the end (NaN threshold, wrong winner)
  const topWanted = Math.floor(policy.top ?? 3)
  const top = topWanted >= 1 ? topWanted : 1
  // ranking only: a spec scaled to zero still ranks offers by their price for one replica
  const replicas = Math.max(1, spec.replicas)
  const providerOk = new Uint8Array(Math.max(1, ix.providers.size)).fill(policy.providers ? 0 : 1)
  if (policy.providers) for (const p of policy.providers) {
    const id = ix.providers.get(p)
    if (id !== undefined) providerOk[id] = 1
  }
  const places = allowedPlaces(ix, spec.regions)
  const wantGpu = spec.gpu.count
  const wantModel = wantGpu > 0 && spec.gpu.model ? (ix.gpuModels.get(gpuKey(spec.gpu.model)) ?? -2) : -1
  const needIpv4 = spec.ports.length > 0
  const spotOk = spec.spotAllowed
  const maxCost = policy.maxCostPerHourUsd && spec.replicas > 0 ? policy.maxCostPerHourUsd.toNumber() * (1 + 1e-9) : Infinity
  const { vcpu, mem, gpuCount, gpuModel, provider, place, hourly, spot, inclStorage, storageHourlyPerGiB, ipv4, ipv4Free, maxStorage, lb, orig } = ix
  const wantVcpu = spec.vcpu
  const wantMem = spec.memoryGiB
  const wantStorage = spec.storageGiB

  // candidates within a hair of the k-th best estimate
  const k = top
  let cand: number[] = []
  let candCost: number[] = []
  let threshold = Infinity
  let nextPrune = 4 * k + 64
  const prune = () => {
    const sorted = candCost.slice().sort((a, b) => a - b)
    threshold = sorted[Math.min(k, sorted.length) - 1]! * (1 + 1e-9) + 1e-12
    const c2: number[] = []
    const cc2: number[] = []
    for (let j = 0; j < cand.length; j++) if (candCost[j]! <= threshold) c2.push(cand[j]!), cc2.push(candCost[j]!)
    cand = c2
    candCost = cc2
    // many exact ties survive a prune; space the next one out so the loop stays linear
    nextPrune = Math.max(4 * k + 64, cand.length * 2)
  }
  // the k best estimates so far, ascending: `bound` is the k-th plus a hair
  const best: number[] = []
  let bound = Infinity
  for (let i = 0; i < ix.n; i++) {
    // rows are sorted by lower bound: nothing from here on can cost less than the k-th best or stay under the cap
    const floor = lb[i]! * replicas
    if (floor > bound || floor > maxCost) break
    if (vcpu[i]! < wantVcpu || mem[i]! < wantMem) continue
    if (providerOk[provider[i]!] === 0) continue
    if (wantGpu > 0 && (gpuCount[i]! < wantGpu || (wantModel !== -1 && gpuModel[i] !== wantModel))) continue
    if (places !== undefined && places[place[i]!] === 0) continue
    let cost = hourly[i]!
    if (spotOk) {
      const s = spot[i]!
      if (s < cost) cost = s
    }
    const extra = wantStorage - inclStorage[i]!
    if (extra > 0) {
      const sp = storageHourlyPerGiB[i]!
      if (sp !== sp || wantStorage > maxStorage[i]!) continue
      cost += extra * sp
    }
    if (needIpv4) {
      if (ipv4Free[i]! < replicas) continue
      cost += ipv4[i]!
    }
    cost *= replicas
    if (cost > maxCost || cost > threshold || cost > bound) continue
    cand.push(i)
    candCost.push(cost)
    if (best.length < k || cost < best[k - 1]!) {
      let j = best.length < k ? best.length : k - 1
      while (j > 0 && best[j - 1]! > cost) {
        best[j] = best[j - 1]!
        j--
      }
      best[j] = cost
      if (best.length === k) bound = best[k - 1]! * (1 + 1e-9) + 1e-12
    }
    if (cand.length >= nextPrune) prune()
  }

  if (cand.length) {
    const quotes = cand.filter((_, j) => candCost[j]! <= bound).map((i) => {
      const o = offers[orig[i]!]!
      return { i, q: quoteOffer(o, spec, spotOk && Boolean(o.spotHourlyUsd?.lt(o.hourlyUsd))) }
    })
    const exact = quotes.filter(({ q }) => !policy.maxCostPerHourUsd || q.breakdown.totalUsd.lte(policy.maxCostPerHourUsd))
    exact.sort(
      (a, b) =>
        a.q.breakdown.totalUsd.cmp(b.q.breakdown.totalUsd) ||
        Number(a.q.spot) - Number(b.q.spot) ||
        cmpStr(a.q.offer.provider, b.q.offer.provider) ||
        cmpStr(a.q.offer.region, b.q.offer.region) ||
        cmpStr(a.q.offer.zone, b.q.offer.zone) ||
        cmpStr(a.q.offer.instanceType, b.q.offer.instanceType) ||
        cmpStr(a.q.offer.source, b.q.offer.source) ||
        orig[a.i]! - orig[b.i]!,
    )
    if (exact.length) return { ok: true, quote: exact[0]!.q, alternatives: exact.slice(1, top).map((x) => x.q) }
  }
  return { ok: false, reason: 'NO_FEASIBLE_OFFER', nearest: nearestMisses(spec, offers, ix, policy, providerOk, places, wantModel) }
}

/** The few offers failing the fewest constraints (then cheapest), each with every reason it fails. */
function nearestMisses(
  spec: ResourceSpec,
  offers: readonly Offer[],
  ix: Index,
  policy: SelectPolicy,
  providerOk: Uint8Array,
  places: Uint8Array | undefined,
  wantModel: number,
  limit = 5,
): Array<{ offer: Offer; why: string[] }> {
  const needIpv4 = spec.ports.length > 0
  const whyOf = (i: number): string[] => {
    const o = offers[ix.orig[i]!] as IndexedOffer
    const why: string[] = []
    if (o.vcpu < spec.vcpu) why.push(`vCPU ${o.vcpu} < ${spec.vcpu}`)
    if (o.memoryGiB < spec.memoryGiB) why.push(`memory ${o.memoryGiB} GiB < ${spec.memoryGiB} GiB`)
    if (spec.gpu.count > 0 && o.gpu.count < spec.gpu.count) why.push(`GPUs ${o.gpu.count} < ${spec.gpu.count}`)
    if (spec.gpu.count > 0 && wantModel !== -1 && ix.gpuModel[i] !== wantModel)
      why.push(`GPU model ${o.gpu.model ?? 'none'} is not ${spec.gpu.model}`)
    if (providerOk[ix.provider[i]!] === 0) why.push(`provider ${o.provider} is not enabled`)
    if (places && places[ix.place[i]!] === 0) why.push(`region ${o.region} is not in ${spec.regions.join(', ')}`)
    const extra = spec.storageGiB - o.includedStorageGiB
    if (extra > 0 && !o.storageUsdPerGiBMonth) why.push(`storage beyond the included ${o.includedStorageGiB} GiB has no known price`)
    if (o.maxStorageGiB !== undefined && spec.storageGiB > o.maxStorageGiB) why.push(`only ${o.maxStorageGiB} GiB storage free`)
    if (spec.ports.length > 0 && o.ipv4Unavailable) why.push(`ports ${spec.ports.join(', ')} need a public IPv4: ${o.ipv4Unavailable}`)
    else if (spec.ports.length > 0 && o.ipv4Free !== undefined && o.ipv4Free < Math.max(1, spec.replicas))
      why.push(`ports ${spec.ports.join(', ')} need a public IPv4 per replica: ${Math.max(1, spec.replicas)} replicas, ${o.ipv4Free} free`)
    if (!why.length && policy.maxCostPerHourUsd) {
      const q = quoteOffer(o, spec, spec.spotAllowed && Boolean(o.spotHourlyUsd?.lt(o.hourlyUsd)))
      if (q.breakdown.totalUsd.gt(policy.maxCostPerHourUsd))
        why.push(`costs ${q.breakdown.totalUsd.toDecimalPlaces(6).toString()} USD/h, above the ceiling ${policy.maxCostPerHourUsd.toString()}`)
    }
    return why
  }
  // cheap pre-score: number of failed numeric constraints, then price
  const best: Array<{ i: number; fails: number; cost: number }> = []
  for (let i = 0; i < ix.n; i++) {
    let fails = 0
    if (ix.vcpu[i]! < spec.vcpu) fails++
    if (ix.mem[i]! < spec.memoryGiB) fails++
    if (spec.gpu.count > 0 && ix.gpuCount[i]! < spec.gpu.count) fails++
    if (spec.gpu.count > 0 && wantModel !== -1 && ix.gpuModel[i] !== wantModel) fails++
    if (providerOk[ix.provider[i]!] === 0) fails++
    if (places && places[ix.place[i]!] === 0) fails++
    if (needIpv4 && ix.ipv4Free[i]! < Math.max(1, spec.replicas)) fails++
    const cost = ix.hourly[i]!
    if (best.length < limit || fails < best[best.length - 1]!.fails || (fails === best[best.length - 1]!.fails && cost < best[best.length - 1]!.cost)) {
      best.push({ i, fails, cost })
      best.sort((a, b) => a.fails - b.fails || a.cost - b.cost || ix.orig[a.i]! - ix.orig[b.i]!)
      if (best.length > limit) best.pop()
    }
  }
  return best.map(({ i }) => ({ offer: offers[ix.orig[i]!]!, why: whyOf(i) })).map((x) => (x.why.length ? x : { ...x, why: ['not among the cheapest feasible offers under the ceiling'] }))
}
