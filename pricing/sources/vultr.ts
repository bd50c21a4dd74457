/**
 * Vultr `GET /v2/plans` and `/v2/plans-metal` (keyless lists): `hourly_cost`, `locations`, preemptible prices and
 * GPU plans. One offer per plan and location; plans that cannot be deployed on demand, and vGPU plans with a fraction of
 * a GPU, are rejected.
 */
import { usd } from '../../core/money.js'
import type { Offer } from '../../core/offer.js'
import { PriceSourceParseError } from '../errors.js'
import { fetchJson, type FetchParameters } from '../http.js'
import { canonicalGpuModel, gpuKey } from '../gpu.js'
import { defaultSanityLimits, screen } from '../sanity.js'
import type { ParseOptions, ParseResult, Rejected } from './types.js'

export type VultrPlan = {
  id?: string
  vcpu_count?: number
  cpu_threads?: number
  cpu_count?: number
  ram?: number
  disk?: number
  disk_count?: number
  hourly_cost?: number
  hourly_cost_preemptible?: number
  deploy_ondemand?: boolean
  deploy_preemptible?: boolean
  location_cost?: Record<string, unknown>
  locations?: string[]
  gpu_type?: string
  gpu_count?: number
  gpu_vram_gb?: number
  gpu_brand?: string
}

type PlansPage = { plans?: VultrPlan[]; plans_metal?: VultrPlan[]; meta?: { links?: { next?: string } } }

/**
 * VRAM of one whole GPU of the models Vultr sells, GB (its A100s are the 80 GB kind). Vultr's vGPU plans share one
 * GPU ("vcg-a100-1c-6g-4vram" is 4 GB of an A100) and carry no gpu_count: less VRAM than the whole GPU marks them.
 */
const WHOLE_GPU_VRAM_GB: Record<string, number> = {
  a100: 80, a40: 48, a16: 16, a6000: 48, rtxa6000: 48, l40: 48, l40s: 48, h100: 80, h200: 141, gh200: 96, b200: 180,
  mi300x: 192, mi325x: 256, mi355x: 288,
}

/** JSON numbers from the API as exact decimals (the shortest repr of what was sent). */
const dec = (n: number) => usd(String(n))

/** Parse a plans page (`plans` and/or `plans_metal`). */
export function parseVultrPlans(text: string, o: ParseOptions): ParseResult {
  let page: PlansPage
  try {
    page = JSON.parse(text)
  } catch (err) {
    throw new PriceSourceParseError('vultr-plans', 'not JSON', err)
  }
  if (!page || (!Array.isArray(page.plans) && !Array.isArray(page.plans_metal)))
    throw new PriceSourceParseError('vultr-plans', 'no plans or plans_metal array')
  return parseVultrPlanList([...(page.plans ?? []), ...(page.plans_metal ?? [])], o)
}

/** Parse plan objects. */
export function parseVultrPlanList(plans: readonly VultrPlan[], o: ParseOptions): ParseResult {
  const offers: Offer[] = []
  const rejected: Rejected[] = []
  plans.forEach((p, i) => {
    const row = `plans[${i}] ${p.id ?? '?'}`
    const why: string[] = []
    const vcpu = p.vcpu_count ?? p.cpu_threads ?? p.cpu_count
    if (!p.id) why.push('no id')
    if (typeof vcpu !== 'number') why.push('no vCPU count')
    if (typeof p.ram !== 'number') why.push('no ram')
    if (typeof p.hourly_cost !== 'number') why.push('no hourly_cost')
    if (p.deploy_ondemand === false) why.push('not deployable on demand (deploy_ondemand: false)')
    if (!p.locations?.length) why.push('no locations')
    if (why.length) return void rejected.push({ row, why: why.join('; ') })
    // id such as "vcg-a40-24c-120g-48vram" for older GPU plans without gpu_* fields
    const m = /^vcg-([a-z0-9]+)-.*?(\d+)vram$/i.exec(p.id!)
    const isGpu = Boolean(p.gpu_type || p.gpu_count || m)
    const gpu: Offer['gpu'] = isGpu
      ? {
          count: p.gpu_count ?? 1,
          model: p.gpu_type ? canonicalGpuModel(p.gpu_type) : m ? m[1]!.toUpperCase() : undefined,
          memoryGiB: p.gpu_vram_gb ?? (m ? Number(m[2]) : undefined),
        }
      : { count: 0 }
    const full = gpu.model !== undefined ? WHOLE_GPU_VRAM_GB[gpuKey(gpu.model)] : undefined
    if (full !== undefined && gpu.memoryGiB !== undefined && gpu.memoryGiB < full)
      return void rejected.push({ row, why: `fractional GPU: ${gpu.memoryGiB} GB VRAM where a whole ${gpu.model} has ${full} GB (only whole GPUs are offered)` })
    const spot = p.deploy_preemptible && typeof p.hourly_cost_preemptible === 'number' ? dec(p.hourly_cost_preemptible) : undefined
    for (const loc of p.locations!) {
      if (p.location_cost && p.location_cost[loc] !== undefined) {
        rejected.push({ row: `${row}@${loc}`, why: 'location-specific price (location_cost) not understood' })
        continue
      }
      offers.push({
        provider: 'vultr',
        region: loc,
        instanceType: p.id!,
        vcpu: vcpu!,
        memoryGiB: p.ram! / 1024,
        gpu: { ...gpu },
        // as the API states it (GB), counted as GiB
        includedStorageGiB: (p.disk ?? 0) * (p.disk_count ?? 1),
        hourlyUsd: dec(p.hourly_cost!),
        spotHourlyUsd: spot,
        source: 'vultr-plans',
        fetchedAt: o.fetchedAt,
      })
    }
  })
  return screen({ offers, rejected }, o.limits ?? defaultSanityLimits)
}

/** Fetch all pages of a plans list (following `meta.links.next` cursors, at most `maxPages`). */
export async function fetchVultrPlans(p: FetchParameters & { maxPages?: number }): Promise<VultrPlan[]> {
  const out: VultrPlan[] = []
  let cursor = ''
  for (let page = 0; page < (p.maxPages ?? 50); page++) {
    const url = cursor ? `${p.url}${p.url.includes('?') ? '&' : '?'}cursor=${encodeURIComponent(cursor)}` : p.url
    const body = (await fetchJson('vultr-plans', { ...p, url })) as PlansPage
    if (!body || (!Array.isArray(body.plans) && !Array.isArray(body.plans_metal)))
      throw new PriceSourceParseError('vultr-plans', `page ${page + 1} has no plans array`)
    out.push(...(body.plans ?? []), ...(body.plans_metal ?? []))
    cursor = body.meta?.links?.next ?? ''
    if (!cursor) return out
  }
  throw new PriceSourceParseError('vultr-plans', 'too many pages')
}
