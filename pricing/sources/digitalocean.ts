/**
 * DigitalOcean, keyless: the Next.js pricing pages https://www.digitalocean.com/pricing/droplets and
 * /pricing/gpu-droplets carry their plans as JSON in `<script id="__NEXT_DATA__" type="application/json">`.
 * No path inside that JSON is assumed (the site's layout is not a contract): the tree is walked (iteratively, bounded
 * depth and node count) and every object with a string `slug` and a price is read as a plan. Two shapes:
 * - the API v2 size object (`price_hourly`, `price_monthly`, `memory` in MiB, `vcpus`, `disk` GB, `regions[]`,
 *   `available`, `gpu_info: {count, model, vram}`), as in a `/v2/sizes` body or a page that embeds one;
 * - page plan objects (`price: {hourly, monthly}`, `cpus|vcpus`, `memory`, `disk` as a number or `{boot, scratch}`,
 *   `gpu: {count|variant, memory, model}`).
 * Also reads those JSON documents saved on their own (a `/v2/sizes` body, a `/_next/data/.../droplets.json`, a saved
 * __NEXT_DATA__).
 *
 * Memory units: an object with `price_hourly`/`price_monthly` (snake case, the API's) states memory in MiB; any other
 * plan object states it in GB unless a unit says otherwise (`memory: "512 MB"`, `memory: {amount, unit}`,
 * `memoryUnit`/`memory_unit`). DigitalOcean's GB are binary (the 512 MiB plan is sold as "512 MB", the 1 GiB one as
 * "1 GB"), so GB count as GiB. Disk and VRAM read the same way, GB by default.
 *
 * Regions: an object with `regions[]` becomes one offer per region. Page plans list none: DigitalOcean prices a droplet
 * the same in every region, so they become one offer per region of `regions` (default DO_DROPLET_REGIONS), GPU plans
 * one per region of `gpuRegions` (default DO_GPU_REGIONS).
 *
 * GPU: model from `gpu_info.model` / `gpu.model` / the slug (`gpu-h100x8-640gb` → 8 × H100), named as pricing/gpu.ts
 * and SkyPilot name them ("H100", "MI300X", "RTX 4000 Ada"); VRAM per GPU from the slug's total, else the object's.
 * Slugs ending in `-spot` give the spot price of their on-demand plan.
 */
import { load } from 'cheerio'
import type { Decimal } from 'decimal.js'
import { usd } from '../../core/money.js'
import type { Offer } from '../../core/offer.js'
import { DO_DROPLET_REGIONS, DO_GPU_REGIONS } from '../config.js'
import { PriceSourceParseError } from '../errors.js'
import { canonicalGpuModel, gpuKey } from '../gpu.js'
import { fetchText, type FetchParameters } from '../http.js'
import { defaultSanityLimits, screen } from '../sanity.js'
import type { ParseOptions, ParseResult, Rejected } from './types.js'

/**
 * DigitalOcean bills a droplet by usage up to a monthly cap of 672 hours (28 days), the monthly price being that cap
 * (DigitalOcean's billing documentation, https://docs.digitalocean.com/platform/billing/); the recorded size object's
 * price_hourly 0.00595 is its price_monthly 4.00 / 672 rounded. So hourly = monthly / 672 when only the monthly price
 * is given.
 */
export const DO_HOURS_PER_MONTH = 672

export { DO_DROPLET_REGIONS, DO_GPU_REGIONS }

export type DigitalOceanOptions = ParseOptions & {
  /** Regions of plans that state none. Default DO_DROPLET_REGIONS. */
  regions?: readonly string[]
  /** Regions of GPU plans that state none. Default DO_GPU_REGIONS. */
  gpuRegions?: readonly string[]
  /** Bounds of the JSON walk: deeper values are not visited; more nodes than maxNodes is a parse error. Defaults 64 and 500 000. */
  maxDepth?: number
  maxNodes?: number
}

type Obj = Record<string, unknown>
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v)

/** The JSON documents of one page: the HTML's __NEXT_DATA__ and other application/json scripts, or the text itself. */
export function digitalOceanJsonDocuments(text: string, page = 1): unknown[] {
  const t = text.trimStart()
  if (t.startsWith('{') || t.startsWith('[')) {
    try {
      return [JSON.parse(text)]
    } catch (err) {
      throw new PriceSourceParseError('digitalocean', `page ${page} is not JSON`, err)
    }
  }
  const $ = load(text)
  const scripts = $('script#__NEXT_DATA__, script[type="application/json"]')
  if (!scripts.length) throw new PriceSourceParseError('digitalocean', `page ${page} has no __NEXT_DATA__ (nor any application/json script)`)
  const docs: unknown[] = []
  let firstError: unknown
  scripts.each((_, el) => {
    const s = $(el)
    try {
      docs.push(JSON.parse(s.text()))
    } catch (err) {
      // the plans are in __NEXT_DATA__; another script that is not JSON only matters when nothing else is
      if (s.attr('id') === '__NEXT_DATA__') throw new PriceSourceParseError('digitalocean', `page ${page}: __NEXT_DATA__ is not JSON`, err)
      firstError ??= err
    }
  })
  if (!docs.length) throw new PriceSourceParseError('digitalocean', `page ${page}: no application/json script is JSON`, firstError)
  return docs
}

const hasPrice = (o: Obj) =>
  'price_hourly' in o || 'price_monthly' in o || 'priceHourly' in o || 'priceMonthly' in o || (isObj(o.price) && ('hourly' in o.price || 'monthly' in o.price))

/** Objects that look like plans (a string `slug` and a price), with their JSON path; plan objects are not walked into. */
export function findDigitalOceanPlans(root: unknown, o: { maxDepth?: number; maxNodes?: number; page?: number } = {}): Array<{ path: string; plan: Obj }> {
  const maxDepth = o.maxDepth ?? 64
  const maxNodes = o.maxNodes ?? 500_000
  const out: Array<{ path: string; plan: Obj }> = []
  const stack: Array<{ v: unknown; path: string; depth: number }> = [{ v: root, path: '', depth: 0 }]
  let nodes = 0
  while (stack.length) {
    const { v, path, depth } = stack.pop()!
    if (typeof v !== 'object' || v === null) continue
    if (++nodes > maxNodes) throw new PriceSourceParseError('digitalocean', `page ${o.page ?? 1}: JSON has more than ${maxNodes} objects`)
    if (isObj(v) && typeof v.slug === 'string' && hasPrice(v)) {
      out.push({ path, plan: v })
      continue
    }
    if (depth >= maxDepth) continue
    // pushed in reverse so that plans come out in document order
    if (Array.isArray(v)) for (let i = v.length - 1; i >= 0; i--) stack.push({ v: v[i], path: `${path}[${i}]`, depth: depth + 1 })
    else {
      const keys = Object.keys(v)
      for (let i = keys.length - 1; i >= 0; i--) stack.push({ v: (v as Obj)[keys[i]!], path: path ? `${path}.${keys[i]}` : keys[i]!, depth: depth + 1 })
    }
  }
  return out
}

const UNIT_GIB: Record<string, number> = { mb: 1 / 1024, mib: 1 / 1024, gb: 1, gib: 1, tb: 1024, tib: 1024 }

/** A size in GiB from a number (in `unit`), "512 MB", or {amount|value|size, unit}; a string saying why when unreadable. */
function sizeGiB(v: unknown, unit: string): number | undefined | { bad: string } {
  if (v === undefined || v === null) return undefined
  let amount: unknown = v
  let u = unit
  if (isObj(v)) {
    amount = v.amount ?? v.value ?? v.size
    if (typeof v.unit === 'string') u = v.unit
  } else if (typeof v === 'string') {
    const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(v)
    if (!m) return { bad: `${JSON.stringify(v)} is not a size` }
    amount = Number(m[1])
    if (m[2]) u = m[2]
  }
  const f = UNIT_GIB[u.toLowerCase()]
  if (f === undefined) return { bad: `unit ${JSON.stringify(u)} is not one of MB, MiB, GB, GiB, TB, TiB` }
  if (typeof amount !== 'number' || !Number.isFinite(amount)) return { bad: `${JSON.stringify(amount)} is not a number` }
  return amount * f
}

const countOf = (v: unknown): number | undefined => {
  if (typeof v === 'number') return v
  if (typeof v !== 'string') return undefined
  const m = /^\s*(?:(\d+)\s*x|x\s*(\d+)|(\d+))\s*$/i.exec(v)
  return m ? Number(m[1] ?? m[2] ?? m[3]) : undefined
}

/** A price as an exact decimal: a JSON number by its decimal string, or "$4.00"; 'bad' when unreadable. */
function priceOf(v: unknown): Decimal | undefined | 'bad' {
  if (v === undefined || v === null) return undefined
  try {
    if (typeof v === 'number') return Number.isFinite(v) ? usd(String(v)) : 'bad'
    if (typeof v === 'string') return usd(v.trim().replace(/^\$/, '').replace(/,/g, ''))
  } catch {
    return 'bad'
  }
  return 'bad'
}

const GPU_MODELS: Record<string, string> = {
  h100: 'H100',
  h200: 'H200',
  b200: 'B200',
  b300: 'B300',
  l40s: 'L40S',
  mi300: 'MI300X',
  mi300x: 'MI300X',
  mi325: 'MI325X',
  mi325x: 'MI325X',
  mi350: 'MI350X',
  mi350x: 'MI350X',
  '4000ada': 'RTX 4000 Ada',
  rtx4000ada: 'RTX 4000 Ada',
  rtx4000adageneration: 'RTX 4000 Ada',
  '6000ada': 'RTX 6000 Ada',
  rtx6000ada: 'RTX 6000 Ada',
  rtx6000adageneration: 'RTX 6000 Ada',
}

/** GPU model name from DigitalOcean's spelling ("nvidia_h100", "amd_mi300x", the slug's "4000ada"): "H100", "MI300X", "RTX 4000 Ada". */
export function digitalOceanGpuModel(raw: string): string {
  const known = GPU_MODELS[gpuKey(raw)]
  if (known) return known
  const c = canonicalGpuModel(raw)
  return c === c.toLowerCase() ? c.toUpperCase() : c
}

const GPU_SLUG = /^gpu-([a-z0-9]+?)x(\d+)-(\d+)gb/i

type Plan = { slug: string; vcpu: number; memoryGiB: number; diskGiB: number; gpu: Offer['gpu']; hourly: Decimal; regions: string[] | undefined }

/** One plan object, or why it cannot be an offer. */
function readPlan(o: Obj): Plan | string[] {
  const why: string[] = []
  const slug = (o.slug as string).trim()
  if (!slug) why.push('empty slug')
  if (o.available === false) why.push('not available (available: false)')
  const api = 'price_hourly' in o || 'price_monthly' in o
  const vcpu = countOf(o.vcpus ?? o.cpus ?? o.vcpu)
  if (vcpu === undefined) why.push('no vCPU count')
  const memUnit = typeof (o.memoryUnit ?? o.memory_unit) === 'string' ? ((o.memoryUnit ?? o.memory_unit) as string) : api ? 'MiB' : 'GB'
  const mem = sizeGiB(o.memory, memUnit)
  if (mem === undefined) why.push('no memory')
  else if (typeof mem === 'object') why.push(`memory ${mem.bad}`)
  const diskRaw = isObj(o.disk) && 'boot' in o.disk ? o.disk.boot : o.disk
  const disk = sizeGiB(diskRaw, typeof (o.diskUnit ?? o.disk_unit) === 'string' ? ((o.diskUnit ?? o.disk_unit) as string) : 'GB')
  if (typeof disk === 'object') why.push(`disk ${disk.bad}`)
  const p = isObj(o.price) ? o.price : {}
  const hourly = priceOf(o.price_hourly ?? o.priceHourly ?? p.hourly)
  const monthly = priceOf(o.price_monthly ?? o.priceMonthly ?? p.monthly)
  if (hourly === 'bad' || monthly === 'bad') why.push(`unreadable price (hourly ${JSON.stringify(o.price_hourly ?? o.priceHourly ?? p.hourly)}, monthly ${JSON.stringify(o.price_monthly ?? o.priceMonthly ?? p.monthly)})`)
  else if (!hourly && !monthly) why.push('no price (neither hourly nor monthly)')
  let regions: string[] | undefined
  if (o.regions !== undefined) {
    // strings (the API's) or region objects with a slug
    const slugs = Array.isArray(o.regions) ? o.regions.map((r: unknown) => (typeof r === 'string' ? r : isObj(r) && typeof r.slug === 'string' ? r.slug : '')) : []
    regions = slugs.map((r) => r.trim().toLowerCase()).filter(Boolean)
    if (!regions.length) why.push('no regions (regions is empty)')
  }
  const g = isObj(o.gpu_info) ? o.gpu_info : isObj(o.gpu) ? o.gpu : undefined
  const s = GPU_SLUG.exec(slug)
  let gpu: Offer['gpu'] = { count: 0 }
  if (g || /^gpu-/i.test(slug) || (typeof o.gpu === 'number' && o.gpu > 0)) {
    const count = countOf(g?.count) ?? countOf(g?.variant) ?? (typeof o.gpu === 'number' ? o.gpu : undefined) ?? (s ? Number(s[2]) : undefined)
    const rawModel = typeof g?.model === 'string' && g.model.trim() ? g.model : s?.[1]
    const vram = s ? Number(s[3]) / Number(s[2]) : sizeGiB(g?.vram ?? g?.memory, 'GB')
    if (count === 0 && !/^gpu-/i.test(slug)) gpu = { count: 0 }
    else if (count === undefined || !(count > 0)) why.push('GPU plan without a GPU count')
    else gpu = { count, model: rawModel ? digitalOceanGpuModel(rawModel) : undefined, memoryGiB: typeof vram === 'number' ? vram : undefined }
  }
  if (why.length) return why
  const perHour = hourly ? (hourly as Decimal) : (monthly as Decimal).div(DO_HOURS_PER_MONTH).toDecimalPlaces(10)
  return { slug, vcpu: vcpu!, memoryGiB: mem as number, diskGiB: (disk as number | undefined) ?? 0, gpu, hourly: perHour, regions }
}

/** Parse the pricing pages (HTML or JSON, several joined) into offers, one per plan and region. */
export function parseDigitalOceanPrices(texts: readonly string[], o: DigitalOceanOptions): ParseResult {
  const offers: Offer[] = []
  const rejected: Rejected[] = []
  const seen = new Map<string, string>()
  const spot: Array<{ row: string; base: string; region: string; price: Decimal }> = []
  texts.forEach((text, pi) => {
    const page = pi + 1
    const found = digitalOceanJsonDocuments(text, page).flatMap((doc, di, all) =>
      findDigitalOceanPlans(doc, { maxDepth: o.maxDepth, maxNodes: o.maxNodes, page }).map((f) => ({ ...f, path: all.length > 1 ? `script ${di + 1} ${f.path}` : f.path })),
    )
    if (!found.length) throw new PriceSourceParseError('digitalocean', `page ${page} has JSON but no plan objects (a slug with a price)`)
    for (const { path, plan } of found) {
      const row = `page ${page} ${path || '(root)'} ${String(plan.slug)}`
      const p = readPlan(plan)
      if (Array.isArray(p)) {
        rejected.push({ row, why: p.join('; ') })
        continue
      }
      const regions = p.regions ?? [...(p.gpu.count ? (o.gpuRegions ?? DO_GPU_REGIONS) : (o.regions ?? DO_DROPLET_REGIONS))]
      const spotOf = /-spot$/i.test(p.slug) ? p.slug.replace(/-spot$/i, '') : undefined
      const dupes: string[] = []
      for (const region of regions) {
        const id = `${p.slug}@${region}`
        if (seen.has(id)) {
          dupes.push(region)
          continue
        }
        seen.set(id, row)
        if (spotOf) {
          spot.push({ row: `${row}@${region}`, base: `${spotOf}@${region}`, region, price: p.hourly })
          continue
        }
        offers.push({
          provider: 'digitalocean',
          region,
          instanceType: p.slug,
          vcpu: p.vcpu,
          memoryGiB: p.memoryGiB,
          gpu: { ...p.gpu },
          includedStorageGiB: p.diskGiB,
          hourlyUsd: p.hourly,
          source: 'digitalocean',
          fetchedAt: o.fetchedAt,
        })
      }
      if (dupes.length) rejected.push({ row: `${row}@${dupes.join(',')}`, why: `duplicate of ${seen.get(`${p.slug}@${dupes[0]}`)}` })
    }
  })
  if (spot.length) {
    const byId = new Map(offers.map((x) => [`${x.instanceType}@${x.region}`, x]))
    for (const s of spot) {
      const od = byId.get(s.base)
      if (od) od.spotHourlyUsd = s.price
      else rejected.push({ row: s.row, why: `spot plan without an on-demand plan ${s.base.split('@')[0]} in ${s.region}` })
    }
  }
  return screen({ offers, rejected }, o.limits ?? defaultSanityLimits)
}

/** Fetch the droplets page (`url`) and the other pricing pages (`pageUrls`, e.g. GPU droplets). */
export async function fetchDigitalOceanPages(p: FetchParameters & { pageUrls?: readonly string[] }): Promise<string[]> {
  const pages = [await fetchText('digitalocean', p)]
  for (const url of p.pageUrls ?? []) pages.push(await fetchText('digitalocean', { ...p, url }))
  return pages
}
