/**
 * SkyPilot's public catalog CSVs (github.com/skypilot-org/skypilot-catalog, catalogs/v8/<cloud>/vms.csv,
 * catalogs/v6/{azure,do}/vms.csv): per-region on-demand and spot prices, vCPUs, memory, GPUs.
 *
 * Traps handled: columns in a different order per cloud (read by header name); CRLF files; quoted cells with
 * commas ("V1,V2") and Python-dict GPU info; empty prices; 700.0 placeholders; duplicate rows; and GCP's GPU
 * VMs (a2/a3/a4/g2), whose row price is the host only — the accelerator row (empty InstanceType) is added to it.
 */
import type { Decimal } from 'decimal.js'
import { usd } from '../../core/money.js'
import type { ProviderId } from '../../core/offer.js'
import { columnIndex, parseCsv } from '../csv.js'
import { PriceSourceParseError } from '../errors.js'
import { fetchText, type FetchParameters } from '../http.js'
import { parsePyLiteral } from '../pyLiteral.js'
import { defaultSanityLimits, priceProblem, screen } from '../sanity.js'
import type { OfferWithGpuPart, ParseOptions, ParseResult, Rejected } from './types.js'

export const SkypilotClouds = ['aws', 'gcp', 'azure', 'do', 'lambda', 'runpod', 'vast'] as const
export type SkypilotCloud = (typeof SkypilotClouds)[number]

const providerOf: Record<SkypilotCloud, ProviderId> = {
  aws: 'aws',
  gcp: 'gcp',
  azure: 'azure',
  do: 'digitalocean',
  lambda: 'lambda',
  runpod: 'runpod',
  vast: 'vast',
}

export type ParseSkypilotOptions = ParseOptions & { cloud: SkypilotCloud }

type GpuInfo = { name?: string; count?: number; memoryGiB?: number }
const gpuInfoCache = new Map<string, GpuInfo | Error>()

/** Parse SkyPilot's GpuInfo cell (a Python dict repr). */
export function parseGpuInfo(cell: string): GpuInfo {
  let v = gpuInfoCache.get(cell)
  if (!v) {
    try {
      const d = parsePyLiteral(cell) as { Gpus?: Array<{ Name?: string; Count?: number; MemoryInfo?: { SizeInMiB?: number } }> }
      const g = d?.Gpus?.[0]
      const mib = g?.MemoryInfo?.SizeInMiB
      v = {
        name: g?.Name,
        count: g?.Count,
        // RunPod's rows say 'SizeInMiB': 80 for an 80 GB card: no GPU has under 1 GiB, so small values are GiB
        memoryGiB: typeof mib === 'number' ? (mib < 1024 ? mib : Math.round((mib / 1024) * 100) / 100) : undefined,
      }
    } catch (err) {
      v = err as Error
    }
    if (gpuInfoCache.size > 10_000) gpuInfoCache.clear()
    gpuInfoCache.set(cell, v)
  }
  if (v instanceof Error) throw v
  return v
}

/**
 * GPUs GCP attaches to N1 machines, with the largest N1 shape each GPU count allows (vCPUs, memory GiB), from GCP's
 * "GPU platforms" documentation. Each accelerator row of these models is paired with every N1 host of its zone that fits.
 */
export const gcpN1GpuLimits: Record<string, Record<number, { vcpu: number; memoryGiB: number }>> = {
  T4: { 1: { vcpu: 48, memoryGiB: 312 }, 2: { vcpu: 48, memoryGiB: 312 }, 4: { vcpu: 96, memoryGiB: 624 } },
  V100: { 1: { vcpu: 12, memoryGiB: 78 }, 2: { vcpu: 24, memoryGiB: 156 }, 4: { vcpu: 48, memoryGiB: 312 }, 8: { vcpu: 96, memoryGiB: 624 } },
  P100: { 1: { vcpu: 16, memoryGiB: 104 }, 2: { vcpu: 32, memoryGiB: 208 }, 4: { vcpu: 96, memoryGiB: 624 } },
  P4: { 1: { vcpu: 24, memoryGiB: 156 }, 2: { vcpu: 48, memoryGiB: 312 }, 4: { vcpu: 96, memoryGiB: 624 } },
  K80: { 1: { vcpu: 8, memoryGiB: 52 }, 2: { vcpu: 16, memoryGiB: 104 }, 4: { vcpu: 32, memoryGiB: 208 }, 8: { vcpu: 64, memoryGiB: 416 } },
}

/** GCP machine types that carry GPUs whose price is a separate accelerator row. */
export function gcpAttachedGpu(instanceType: string): { model: string; count: number } | undefined {
  let m = /^a2-(highgpu|megagpu|ultragpu)-(\d+)g(-nolssd)?$/.exec(instanceType)
  if (m) return { model: m[1] === 'ultragpu' ? 'A100-80GB' : 'A100', count: Number(m[2]) }
  m = /^a3-(highgpu|megagpu|edgegpu|ultragpu)-(\d+)g(-nolssd)?$/.exec(instanceType)
  if (m) return { model: m[1] === 'megagpu' ? 'H100-MEGA' : m[1] === 'ultragpu' ? 'H200' : 'H100', count: Number(m[2]) }
  m = /^a4-highgpu-(\d+)g$/.exec(instanceType)
  if (m) return { model: 'B200', count: Number(m[1]) }
  m = /^g2-standard-(\d+)$/.exec(instanceType)
  if (m) {
    const n = Number(m[1])
    return { model: 'L4', count: n === 96 ? 8 : n === 48 ? 4 : n === 24 ? 2 : 1 }
  }
  return undefined
}

const REQUIRED = ['InstanceType', 'AcceleratorName', 'AcceleratorCount', 'vCPUs', 'MemoryGiB', 'Price', 'SpotPrice', 'Region']

/** Parse one SkyPilot `vms.csv` of `cloud`. Pure; throws PriceSourceParseError when the text is not such a CSV. */
export function parseSkypilotCsv(text: string, o: ParseSkypilotOptions): ParseResult {
  const source = `skypilot-${o.cloud}`
  const provider = providerOf[o.cloud]
  const limits = o.limits ?? defaultSanityLimits
  const rows = parseCsv(text)
  const header = rows[0]
  if (!header) throw new PriceSourceParseError(source, 'empty file')
  let col: Record<string, number>
  try {
    col = columnIndex(header.cells, REQUIRED)
  } catch (err) {
    throw new PriceSourceParseError(source, (err as Error).message, err)
  }
  const cIt = col.InstanceType!
  const cAn = col.AcceleratorName!
  const cAc = col.AcceleratorCount!
  const cV = col.vCPUs!
  const cM = col.MemoryGiB!
  const cP = col.Price!
  const cS = col.SpotPrice!
  const cR = col.Region!
  const cZ = col.AvailabilityZone
  const cG = col.GpuInfo
  const width = header.cells.length
  // catalogs repeat the same price strings across zones and sizes: parse and check each one once
  const prices = new Map<string, { value?: Decimal; problem?: string }>()
  const readPrice = (cell: string) => {
    let p = prices.get(cell)
    if (!p) {
      try {
        const value = usd(cell)
        p = { value, problem: priceProblem(value, '', limits)?.trimStart() }
      } catch {
        p = {}
      }
      prices.set(cell, p)
    }
    return p
  }

  const offers: OfferWithGpuPart[] = []
  const rejected: Rejected[] = []
  const seen = new Map<string, number>()
  // GCP accelerator prices by model|count|zone-or-region, and the GPU hosts waiting for them
  const accel = new Map<string, { price: Decimal; spot: Decimal | undefined }>()
  const waiting: Array<{ line: number; offer: OfferWithGpuPart; gpu: { model: string; count: number } }> = []
  const attachable: Array<{ line: number; model: string; count: number; region: string; zone: string | undefined; price: Decimal; spot: Decimal | undefined }> = []

  for (let r = 1; r < rows.length; r++) {
    const { line, cells, raw } = rows[r]!
    if (cells.length !== width) {
      rejected.push({ line, why: `${cells.length} cells, the header has ${width}` })
      continue
    }
    const instanceType = cells[cIt]!.trim()
    const region = cells[cR]!.trim()
    const zone = cZ !== undefined ? cells[cZ]!.trim() || undefined : undefined
    const priceCell = cells[cP]!.trim()
    const spotCell = cells[cS]!.trim()
    const first = seen.get(raw)
    if (first !== undefined) {
      rejected.push({ line, why: `duplicate of line ${first}` })
      continue
    }
    seen.set(raw, line)

    const why: string[] = []
    let price: Decimal | undefined
    if (!priceCell) why.push('no on-demand price')
    else {
      const p = readPrice(priceCell)
      if (!p.value) why.push(`on-demand price ${JSON.stringify(priceCell)} is not a number`)
      else {
        price = p.value
        if (p.problem) why.push(`hourly price ${p.problem}`)
      }
    }
    let spot: Decimal | undefined
    if (spotCell) {
      const s = readPrice(spotCell)
      spot = s.value && !s.problem ? s.value : undefined
    }
    if (!region) why.push('no region')

    const accName = cells[cAn]!.trim()
    const accCountCell = cells[cAc]!.trim()
    const accCount = accCountCell ? Number(accCountCell) : 0

    if (!instanceType) {
      if (o.cloud === 'gcp' && accName) {
        if (accName.startsWith('tpu-')) why.push('TPU slice: its host vCPU/memory are not in the catalog')
        if (!why.length && price) {
          accel.set(`${accName}|${accCount}|${zone ?? region}`, { price, spot })
          if (zone) accel.set(`${accName}|${accCount}|${region}`, { price, spot })
          if (gcpN1GpuLimits[accName]?.[accCount]) attachable.push({ line, model: accName, count: accCount, region, zone, price, spot })
          continue
        }
      } else why.push('no instance type')
      rejected.push({ line, why: why.join('; ') })
      continue
    }

    const vcpu = Number(cells[cV])
    const memoryGiB = Number(cells[cM])
    if (!cells[cV]!.trim() || !Number.isFinite(vcpu)) why.push(`vCPUs ${JSON.stringify(cells[cV])} is not a number`)
    if (!cells[cM]!.trim() || !Number.isFinite(memoryGiB)) why.push(`MemoryGiB ${JSON.stringify(cells[cM])} is not a number`)

    let gpuModel: string | undefined = accName || undefined
    let gpuCount = Number.isFinite(accCount) ? accCount : NaN
    let gpuMemoryGiB: number | undefined
    const gpuCell = cG !== undefined ? cells[cG]!.trim() : ''
    if (gpuCell) {
      try {
        const info = parseGpuInfo(gpuCell)
        gpuMemoryGiB = info.memoryGiB
        gpuModel ??= info.name
        if (!accCountCell && typeof info.count === 'number') gpuCount = info.count
      } catch (err) {
        why.push(`GpuInfo is not a Python dict (${(err as Error).message.split(' at ')[0]})`)
      }
    }
    if (!Number.isInteger(gpuCount) || gpuCount < 0) why.push(`GPU count ${JSON.stringify(accCountCell)} is not a whole number`)

    const attached = o.cloud === 'gcp' ? gcpAttachedGpu(instanceType) : undefined
    if (why.length || !price) {
      rejected.push({ line, why: why.join('; ') })
      continue
    }
    const offer: OfferWithGpuPart = {
      provider,
      region,
      zone,
      instanceType,
      vcpu,
      memoryGiB,
      gpu: { count: attached ? attached.count : gpuCount, model: attached ? attached.model : gpuModel, memoryGiB: gpuMemoryGiB },
      includedStorageGiB: 0,
      hourlyUsd: price,
      spotHourlyUsd: spot,
      source,
      fetchedAt: o.fetchedAt,
    }
    if (attached && !accName) waiting.push({ line, offer, gpu: attached })
    else offers.push(offer)
  }

  for (const w of waiting) {
    const { model, count } = w.gpu
    const where = w.offer.zone ?? w.offer.region
    let a = accel.get(`${model}|${count}|${where}`) ?? accel.get(`${model}|${count}|${w.offer.region}`)
    let gpuPrice = a?.price
    let gpuSpot = a?.spot
    if (!a) {
      a = accel.get(`${model}|1|${where}`) ?? accel.get(`${model}|1|${w.offer.region}`)
      gpuPrice = a?.price.mul(count)
      gpuSpot = a?.spot?.mul(count)
    }
    if (!a || !gpuPrice) {
      rejected.push({ line: w.line, why: `host-only price: no ${model} accelerator price for ${where} in the catalog` })
      continue
    }
    w.offer.gpuHourlyUsd = gpuPrice
    w.offer.hourlyUsd = w.offer.hourlyUsd.add(gpuPrice)
    if (w.offer.spotHourlyUsd && gpuSpot) {
      w.offer.gpuSpotHourlyUsd = gpuSpot
      w.offer.spotHourlyUsd = w.offer.spotHourlyUsd.add(gpuSpot)
      if (priceProblem(w.offer.spotHourlyUsd, 'spot price', limits)) w.offer.spotHourlyUsd = w.offer.gpuSpotHourlyUsd = undefined
    } else w.offer.spotHourlyUsd = undefined
    const total = priceProblem(w.offer.hourlyUsd, 'host + accelerator price', limits)
    if (total) rejected.push({ line: w.line, why: total })
    else offers.push(w.offer)
  }
  if (attachable.length) {
    const n1ByPlace = new Map<string, OfferWithGpuPart[]>()
    for (const o of offers) {
      if (!o.instanceType.startsWith('n1-') || o.gpu.count) continue
      const k = `${o.region}|${o.zone ?? ''}`
      n1ByPlace.set(k, [...(n1ByPlace.get(k) ?? []), o])
    }
    for (const a of attachable) {
      const limit = gcpN1GpuLimits[a.model]![a.count]!
      const hosts = a.zone ? (n1ByPlace.get(`${a.region}|${a.zone}`) ?? []) : [...n1ByPlace.entries()].filter(([k]) => k.startsWith(`${a.region}|`)).flatMap(([, v]) => v)
      for (const h of hosts) {
        if (h.vcpu > limit.vcpu || h.memoryGiB > limit.memoryGiB) continue
        const hourlyUsd = h.hourlyUsd.add(a.price)
        if (priceProblem(hourlyUsd, 'host + accelerator price', limits)) continue
        const both = h.spotHourlyUsd && a.spot
        offers.push({
          ...h,
          gpu: { count: a.count, model: a.model },
          hourlyUsd,
          gpuHourlyUsd: a.price,
          spotHourlyUsd: both ? h.spotHourlyUsd!.add(a.spot!) : undefined,
          gpuSpotHourlyUsd: both ? a.spot : undefined,
        })
      }
    }
  }
  return screen({ offers, rejected }, limits, true)
}

/** SkyPilot's common/accelerators.csv: canonical accelerator names and the clouds offering each. */
export function parseSkypilotAccelerators(text: string): Array<{ name: string; clouds: string[] }> {
  const rows = parseCsv(text)
  const col = columnIndex(rows[0]?.cells ?? [], ['AcceleratorName', 'Clouds'])
  return rows.slice(1).map(({ cells }) => {
    const raw = cells[col.Clouds!]!.trim()
    const clouds = raw.startsWith('[') ? (parsePyLiteral(raw) as string[]) : raw ? [raw] : []
    return { name: cells[col.AcceleratorName!]!.trim(), clouds }
  })
}

/** Fetch one catalog CSV. */
export function fetchSkypilotCatalog(p: FetchParameters & { cloud: SkypilotCloud }): Promise<string> {
  return fetchText(`skypilot-${p.cloud}`, p)
}
