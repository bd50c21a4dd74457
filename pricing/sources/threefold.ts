/**
 * ThreeFold Grid: nodes with free capacity from the grid proxy (`/nodes?status=up&free_mru=...`), priced with the
 * TFChain pricing policy (cloud units), plus the TFT/USD rate from several sources and the USD → TFT conversion with
 * a safety buffer that funding a twin needs.
 *
 * Cost of a workload per hour = (CU × policy.cu + SU × policy.su) / 1e7 USD, where
 *   CU = min(max(MRU/4, CRU/2), max(MRU/8, CRU), max(MRU/2, CRU/4))   (MRU in GiB, CRU in cores)
 *   SU = HRU/1200 + SRU/200                                           (GiB)
 * then × the staking discount multiplier (none 1, default 0.8, bronze 0.7, silver 0.6, gold 0.4), × 1.25 on
 * certified nodes (tfchain pallet-smart-contract), a public IPv4 adds policy.ipu per hour, and renting a whole node
 * takes `discountForDedicationNodes` percent off. The grid offers any slice of a node; the catalog lists a ladder of
 * standard sizes per node. ZOS overcommits CPU, so vCPU is bounded by the node's cores, not by cores in use (the
 * proxy's used cru often exceeds total); memory and SSD are reserved, so free = total − used. A public IPv4 comes
 * from the farm's list of addresses: nodes of a farm with none free can host no workload that exposes ports, and
 * their offers say so (`ipv4Unavailable`).
 */
import { Decimal } from 'decimal.js'
import { Usd, usd } from '../../core/money.js'
import type { Offer } from '../../core/offer.js'
import { parseGridFarmList, type FarmIpv4, type GridFarm } from '../../core/gridFarms.js'
import type { ThreefoldDiscountLevel, ThreefoldPricingPolicy, TftUsdConfig } from '../config.js'
import { PriceSourceParseError, TftRateError } from '../errors.js'
import { fetchJson, fetchText, type FetchParameters } from '../http.js'
import { defaultSanityLimits, screen } from '../sanity.js'
import type { OfferWithGpuPart, ParseOptions, ParseResult, Rejected } from './types.js'

/** Re-exported: the rule is shared with the grid target (core/gridFarms.ts). */
export { parseGridFarmList, type FarmIpv4, type GridFarm, type GridPublicIp } from '../../core/gridFarms.js'

const GIB = 2 ** 30
const UNITS_PER_USD = new Usd(10_000_000)
const HOURS_PER_MONTH = 730

export type GridNode = {
  nodeId?: number
  farmId?: number
  country?: string
  city?: string
  region?: string
  status?: string
  certificationType?: string
  total_resources?: { cru?: number; sru?: number; hru?: number; mru?: number }
  used_resources?: { cru?: number; sru?: number; hru?: number; mru?: number }
  location?: { country?: string; city?: string }
  rentable?: boolean
  rented?: boolean
  dedicated?: boolean
  inDedicatedFarm?: boolean
  num_gpu?: number
  gpus?: Array<{ vendor?: string; device?: string }>
  /** mUSD per month charged by the farmer on top, for dedicated nodes. */
  extraFee?: number
}

/** Staking discount multipliers by level (tfchain DiscountLevel::price_multiplier). */
export const discountMultiplier: Record<ThreefoldDiscountLevel, string> = {
  none: '1',
  default: '0.8',
  bronze: '0.7',
  silver: '0.6',
  gold: '0.4',
}

/** Discount level for a balance that covers `monthsCovered` months of the contracts' cost (≥1.5, 3, 6, 18). */
export function discountLevelFor(monthsCovered: number): ThreefoldDiscountLevel {
  if (monthsCovered >= 18) return 'gold'
  if (monthsCovered >= 6) return 'silver'
  if (monthsCovered >= 3) return 'bronze'
  if (monthsCovered >= 1.5) return 'default'
  return 'none'
}

/** Compute units of `cru` cores and `mruGiB` memory. */
export function cloudUnits(cru: Decimal.Value, mruGiB: Decimal.Value): Decimal {
  const c = new Usd(cru)
  const m = new Usd(mruGiB)
  return Decimal.min(Decimal.max(m.div(4), c.div(2)), Decimal.max(m.div(8), c), Decimal.max(m.div(2), c.div(4)))
}

/** Storage units of HDD and SSD, GiB. */
export function storageUnits(hruGiB: Decimal.Value, sruGiB: Decimal.Value): Decimal {
  return new Usd(hruGiB).div(1200).add(new Usd(sruGiB).div(200))
}

/** USD per hour of one policy value (chain units = USD × 1e7 per hour). */
export const policyUsd = (units: number) => new Usd(units).div(UNITS_PER_USD)

export type ThreefoldPriceParameters = {
  policy: ThreefoldPricingPolicy
  discount: ThreefoldDiscountLevel
  certified?: boolean
}

const multiplier = (p: ThreefoldPriceParameters) => new Usd(discountMultiplier[p.discount]).mul(p.certified ? '1.25' : '1')

/** Hourly USD of a workload: `cru` cores, `mruGiB` memory, SSD/HDD GiB, public IPv4 count. */
export function workloadHourlyUsd(
  w: { cru: number; mruGiB: Decimal.Value; sruGiB?: Decimal.Value; hruGiB?: Decimal.Value; ipv4?: number; dedicated?: boolean },
  p: ThreefoldPriceParameters,
): Decimal {
  const cu = cloudUnits(w.cru, w.mruGiB).mul(policyUsd(p.policy.cu))
  const su = storageUnits(w.hruGiB ?? 0, w.sruGiB ?? 0).mul(policyUsd(p.policy.su))
  let total = cu.add(su)
  if (w.dedicated) total = total.mul(new Usd(100 - p.policy.discountForDedicationNodes).div(100))
  total = total.add(policyUsd(p.policy.ipu).mul(w.ipv4 ?? 0))
  return total.mul(multiplier(p))
}

export type ParseGridNodesOptions = ParseOptions &
  ThreefoldPriceParameters & {
    /** Ladder of slice sizes. Default vCPU 1..64 in powers of two, memory 1..512 GiB, memory/vCPU in [1, 8]. */
    vcpuSizes?: number[]
    memorySizesGiB?: number[]
    /**
     * Free public IPv4 addresses per farm id (`parseGridFarmList`). Given, the offers of nodes whose farm has none
     * (or is absent) carry `ipv4Unavailable`; absent, IPv4 availability is unknown and no offer is marked.
     */
    farmFreeIpv4?: ReadonlyMap<number, number>
  }

const VCPU_SIZES = [1, 2, 4, 8, 16, 32, 64]
const MEM_SIZES = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]
const gib = (bytes: number | undefined) => new Usd(bytes ?? 0).div(GIB)

/** Offers from a grid proxy `/nodes` answer (JSON array). */
export function parseGridNodes(text: string, o: ParseGridNodesOptions): ParseResult {
  let nodes: GridNode[]
  try {
    nodes = JSON.parse(text)
  } catch (err) {
    throw new PriceSourceParseError('threefold', 'not JSON', err)
  }
  if (!Array.isArray(nodes)) throw new PriceSourceParseError('threefold', 'not an array of nodes')
  return parseGridNodeList(nodes, o)
}

/** Offers from node objects. */
export function parseGridNodeList(nodes: readonly GridNode[], o: ParseGridNodesOptions): ParseResult {
  const offers: OfferWithGpuPart[] = []
  const rejected: Rejected[] = []
  const suUsd = policyUsd(o.policy.su)
  const ipv4Usd = policyUsd(o.policy.ipu)
  nodes.forEach((n, i) => {
    const row = `[${i}] node ${n.nodeId ?? '?'}`
    const t = n.total_resources
    const u = n.used_resources ?? {}
    const why: string[] = []
    if (typeof n.nodeId !== 'number') why.push('no nodeId')
    if (n.status !== undefined && n.status !== 'up') why.push(`status ${n.status}`)
    if (!t || !(typeof t.cru === 'number' && t.cru > 0) || !(typeof t.mru === 'number' && t.mru > 0)) why.push('no total cru/mru')
    if (n.rented) why.push('rented by another twin')
    const country = n.location?.country ?? n.country
    if (!country) why.push('no country')
    if (why.length) return void rejected.push({ row, why: why.join('; ') })
    const p: ThreefoldPriceParameters = { policy: o.policy, discount: o.discount, certified: n.certificationType === 'Certified' }
    const mult = multiplier(p)
    const freeMem = Decimal.max(0, gib(t!.mru).sub(gib(u.mru)))
    const freeSsd = Decimal.max(0, gib(t!.sru).sub(gib(u.sru)))
    const city = n.location?.city ?? n.city
    const base = {
      provider: 'threefold' as const,
      region: country!.toLowerCase().replace(/\s+/g, '-'),
      zone: city && city !== 'Unknown' ? city : undefined,
      source: 'threefold',
      fetchedAt: o.fetchedAt,
    }
    const freeIps = o.farmFreeIpv4 ? (o.farmFreeIpv4.get(n.farmId ?? -1) ?? 0) : undefined
    const noIpv4 = freeIps === undefined ? undefined : freeIps > 0 ? { ipv4Free: freeIps } : { ipv4Free: 0, ipv4Unavailable: `farm ${n.farmId ?? '?'} has no free public IPv4` }
    const gpuCount = n.num_gpu ?? n.gpus?.length ?? 0
    const dedicatedOnly = Boolean(n.dedicated || n.inDedicatedFarm || gpuCount > 0)
    if (n.rentable) {
      const hostUsd = workloadHourlyUsd({ cru: t!.cru!, mruGiB: gib(t!.mru), sruGiB: gib(t!.sru), hruGiB: gib(t!.hru), dedicated: true }, p)
      const feeUsd = n.extraFee ? new Usd(n.extraFee).div(1000).div(HOURS_PER_MONTH) : undefined
      const offer: OfferWithGpuPart = {
        ...base,
        instanceType: `node-${n.nodeId}/dedicated`,
        vcpu: t!.cru!,
        memoryGiB: gib(t!.mru).toDecimalPlaces(2, Decimal.ROUND_DOWN).toNumber(),
        gpu: gpuCount > 0 ? { count: gpuCount, model: n.gpus?.[0]?.device } : { count: 0 },
        includedStorageGiB: gib(t!.sru).toDecimalPlaces(0, Decimal.ROUND_DOWN).toNumber(),
        hourlyUsd: feeUsd ? hostUsd.add(feeUsd) : hostUsd,
        ipv4HourlyUsd: ipv4Usd.mul(mult),
        ...noIpv4,
      }
      if (feeUsd && gpuCount > 0) offer.gpuHourlyUsd = feeUsd
      offers.push(offer)
    } else if (dedicatedOnly) {
      rejected.push({ row, why: gpuCount > 0 ? 'GPU node that is not rentable' : 'dedicated node that is not rentable' })
      return
    }
    if (dedicatedOnly) return
    let any = false
    for (const v of o.vcpuSizes ?? VCPU_SIZES) {
      if (v > t!.cru!) continue
      for (const m of o.memorySizesGiB ?? MEM_SIZES) {
        if (m < v || m > v * 8 || freeMem.lt(m)) continue
        any = true
        offers.push({
          ...base,
          instanceType: `node-${n.nodeId}/${v}c-${m}g`,
          vcpu: v,
          memoryGiB: m,
          gpu: { count: 0 },
          includedStorageGiB: 0,
          hourlyUsd: cloudUnits(v, m).mul(policyUsd(o.policy.cu)).mul(mult),
          // SSD: 1 SU per 200 GiB
          storageUsdPerGiBMonth: suUsd.div(200).mul(HOURS_PER_MONTH).mul(mult),
          ipv4HourlyUsd: ipv4Usd.mul(mult),
          maxStorageGiB: freeSsd.toDecimalPlaces(0, Decimal.ROUND_DOWN).toNumber(),
          ...noIpv4,
        })
      }
    }
    if (!any) rejected.push({ row, why: `no slice fits the free memory (${freeMem.toDecimalPlaces(2).toString()} GiB)` })
  })
  return screen({ offers, rejected }, o.limits ?? defaultSanityLimits)
}

/** Fetch up nodes with at least `minFreeMemoryGiB` free, page by page. */
export async function fetchGridNodes(p: FetchParameters & { minFreeMemoryGiB: number; pageSize: number; maxPages: number }): Promise<GridNode[]> {
  const out: GridNode[] = []
  const base = p.url.replace(/\/+$/, '')
  for (let page = 1; page <= p.maxPages; page++) {
    const url = `${base}/nodes?status=up&free_mru=${Math.round(p.minFreeMemoryGiB * GIB)}&size=${p.pageSize}&page=${page}`
    const body = await fetchJson('threefold', { ...p, url })
    if (!Array.isArray(body)) throw new PriceSourceParseError('threefold', `page ${page} is not an array of nodes`)
    out.push(...(body as GridNode[]))
    if (body.length < p.pageSize) return out
  }
  return out
}

/** Free public IPv4 addresses per farm from a grid proxy `/farms` answer (JSON array). */
export function parseGridFarms(text: string): FarmIpv4 {
  let farms: unknown
  try {
    farms = JSON.parse(text)
  } catch (err) {
    throw new PriceSourceParseError('threefold', 'farms: not JSON', err)
  }
  if (!Array.isArray(farms)) throw new PriceSourceParseError('threefold', 'farms: not an array of farms')
  return parseGridFarmList(farms as GridFarm[])
}

/** Fetch the farms that have at least one free public IPv4 (`free_ips=1`), page by page; `complete` is false when `maxPages` cut the list. */
export async function fetchGridFarms(p: FetchParameters & { pageSize: number; maxPages: number }): Promise<{ farms: GridFarm[]; complete: boolean }> {
  const farms: GridFarm[] = []
  const base = p.url.replace(/\/+$/, '')
  for (let page = 1; page <= p.maxPages; page++) {
    const url = `${base}/farms?free_ips=1&size=${p.pageSize}&page=${page}`
    const body = await fetchJson('threefold', { ...p, url })
    if (!Array.isArray(body)) throw new PriceSourceParseError('threefold', `farms page ${page} is not an array of farms`)
    farms.push(...(body as GridFarm[]))
    if (body.length < p.pageSize) return { farms, complete: true }
  }
  return { farms, complete: false }
}

/** USD per TFT from a Horizon strict-receive paths answer: the cheapest path's source_amount / destination_amount. */
export function parseStellarTftUsd(text: string): Decimal {
  let body: { _embedded?: { records?: Array<{ source_asset_code?: string; source_amount?: string; destination_amount?: string; destination_asset_code?: string }> } }
  try {
    body = JSON.parse(text)
  } catch (err) {
    throw new PriceSourceParseError('stellar-horizon', 'not JSON', err)
  }
  const rates = (body?._embedded?.records ?? [])
    .filter((r) => r.destination_asset_code === 'TFT' && r.source_amount && r.destination_amount)
    .map((r) => usd(r.source_amount!).div(usd(r.destination_amount!)))
    .filter((r) => r.gt(0))
  if (!rates.length) throw new PriceSourceParseError('stellar-horizon', 'no USDC → TFT path records')
  return Decimal.min(...rates) as Decimal
}

const USDC = 'USDC:GA5ZSEJYB37JRC5AVCIA5MOP4RHTM335X2KGX3IHOJAPP5RE34K4KZVN'
const TFT_ISSUER = 'GBOVQKJYHXRR3DX6NOX2RRYFRCUMSADGDESTDNBDS6CDVLGVESRTAC47'

/** Ask Horizon what buying `amount` TFT costs in USDC (as the TFChain price oracle does). */
export async function fetchStellarTftUsd(p: FetchParameters & { amount?: number }): Promise<Decimal> {
  const q = new URLSearchParams({
    source_assets: USDC,
    destination_asset_type: 'credit_alphanum4',
    destination_asset_issuer: TFT_ISSUER,
    destination_asset_code: 'TFT',
    destination_amount: String(p.amount ?? 100),
  })
  const text = await fetchText('stellar-horizon', { ...p, url: `${p.url.replace(/\/+$/, '')}/paths/strict-receive?${q}` })
  return parseStellarTftUsd(text)
}

export type TftRate = {
  /** USD per TFT: the median of the sources that agree. */
  usdPerTft: Decimal
  used: Array<{ source: string; usdPerTft: Decimal }>
  discarded: Array<{ source: string; usdPerTft?: Decimal; why: string }>
}

/** Combine several TFT/USD samples: median, drop outliers beyond `maxDeviation`, require `minSources` agreeing. */
export function combineTftRates(
  samples: ReadonlyArray<{ source: string; usdPerTft: Decimal }>,
  o: { maxDeviation: number; minSources: number },
): TftRate {
  const median = (xs: Decimal[]) => {
    const s = [...xs].sort((a, b) => a.cmp(b))
    const mid = Math.floor(s.length / 2)
    return s.length % 2 ? s[mid]! : s[mid - 1]!.add(s[mid]!).div(2)
  }
  const valid = samples.filter((s) => s.usdPerTft.isFinite() && s.usdPerTft.gt(0))
  const discarded: TftRate['discarded'] = samples.filter((s) => !valid.includes(s)).map((s) => ({ ...s, why: 'not a positive number' }))
  if (!valid.length) throw new TftRateError('no usable source', discarded.map((d) => `${d.source}: ${d.why}`))
  const m = median(valid.map((s) => s.usdPerTft))
  const used = valid.filter((s) => {
    const dev = s.usdPerTft.sub(m).abs().div(m)
    if (dev.gt(o.maxDeviation)) {
      discarded.push({ ...s, why: `${dev.mul(100).toFixed(1)} % from the median ${m.toString()}` })
      return false
    }
    return true
  })
  if (used.length < o.minSources)
    throw new TftRateError(`${used.length} agreeing source(s), ${o.minSources} needed`, [
      ...used.map((u) => `${u.source}: ${u.usdPerTft.toString()}`),
      ...discarded.map((d) => `${d.source}: ${d.usdPerTft?.toString() ?? '-'} (${d.why})`),
    ])
  return { usdPerTft: median(used.map((u) => u.usdPerTft)), used, discarded }
}

/** TFT has 7 decimals on Stellar and TFChain. */
export const TFT_DECIMALS = 7

/** TFT base units that cover `amountUsd` at `usdPerTft`, plus `buffer` (0.1 = 10 %) against price moves; rounds up. */
export function usdToTftWithBuffer(amountUsd: Decimal, usdPerTft: Decimal, buffer: number): bigint {
  if (!usdPerTft.gt(0)) throw new TftRateError(`rate ${usdPerTft.toString()} is not positive`)
  if (!(buffer >= 0)) throw new RangeError(`buffer ${buffer} must be >= 0`)
  const units = new Usd(amountUsd).div(usdPerTft).mul(new Usd(1).add(String(buffer))).mul(new Usd(10).pow(TFT_DECIMALS))
  return BigInt(units.toDecimalPlaces(0, Decimal.ROUND_CEIL).toFixed(0))
}

type Failure = { source: string; why: string }
const firstLine = (err: unknown) => (err instanceof Error ? err.message : String(err)).split('\n')[0]!

/** Read TFChain's price; a failed read is noted and the configured value, if any, stands in. */
async function tfchainSample(c: TftUsdConfig, signal: AbortSignal | undefined, failures: Failure[]): Promise<{ source: string; usdPerTft: Decimal } | undefined> {
  const fromConfig = (source: string) => (c.tfchainPriceMusd === undefined ? undefined : { source, usdPerTft: new Usd(c.tfchainPriceMusd).div(1000) })
  if (!c.tfchainUrl) return fromConfig('tfchain')
  try {
    // loaded on demand: it pulls in @polkadot/api
    const { fetchTfchain } = await import('./tfchain.js')
    const r = await fetchTfchain({ url: c.tfchainUrl, signal, timeoutMs: c.timeoutMs, types: c.tfchainTypes })
    return { source: 'tfchain', usdPerTft: r.usdPerTft }
  } catch (err) {
    failures.push({ source: 'tfchain', why: firstLine(err) })
    return fromConfig('tfchain-config')
  }
}

/**
 * Gather TFT/USD from TFChain (node or configured value), further configured values and Stellar Horizon, then combine
 * them. A source that could not be read is listed in `discarded` with the reason.
 */
export async function resolveTftUsd(c: TftUsdConfig, p: { signal?: AbortSignal } = {}): Promise<TftRate> {
  const samples: Array<{ source: string; usdPerTft: Decimal }> = []
  const failures: Failure[] = []
  const [tfchain, stellar] = await Promise.all([
    tfchainSample(c, p.signal, failures),
    c.stellarEnabled
      ? fetchStellarTftUsd({ url: c.stellarUrl, signal: p.signal, timeoutMs: c.timeoutMs }).catch((err: unknown) => {
          failures.push({ source: 'stellar-horizon', why: firstLine(err) })
          return undefined
        })
      : undefined,
  ])
  if (tfchain) samples.push(tfchain)
  c.extraUsd.forEach((v, i) => samples.push({ source: `config[${i}]`, usdPerTft: usd(v) }))
  if (stellar) samples.push({ source: 'stellar-horizon', usdPerTft: stellar })
  try {
    const rate = combineTftRates(samples, c)
    return { ...rate, discarded: [...rate.discarded, ...failures] }
  } catch (err) {
    if (err instanceof TftRateError)
      throw new TftRateError(err.shortMessage.replace(/^TFT\/USD rate unavailable: /, ''), [...err.details, ...failures.map((f) => `${f.source}: ${f.why}`)])
    throw err
  }
}

/** A pricing policy as TFChain/GraphQL return it (`{ cu: { value, unit } ... }`) or already flat. */
export function pricingPolicyFromChain(raw: Record<string, unknown>): ThreefoldPricingPolicy {
  const v = (k: string): number => {
    const x = raw[k]
    const n = typeof x === 'object' && x !== null ? (x as { value?: unknown }).value : x
    if (typeof n !== 'number' || !Number.isFinite(n) || n < 0) throw new PriceSourceParseError('threefold', `pricing policy ${k}: got ${JSON.stringify(x)}`)
    return n
  }
  return { cu: v('cu'), su: v('su'), nu: v('nu'), ipu: v('ipu'), discountForDedicationNodes: v('discountForDedicationNodes') }
}
