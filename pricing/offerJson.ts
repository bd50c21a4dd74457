/**
 * The flat JSON form of an offer (USD as decimal strings): one line of `pricing parse` output and one element of a
 * catalog cache file.
 */
import { usd } from '../core/money.js'
import type { Offer, ProviderId } from '../core/offer.js'
import type { OfferWithGpuPart } from './sources/types.js'

export type OfferJson = {
  provider: ProviderId
  region: string
  zone?: string
  instanceType: string
  vcpu: number
  memoryGiB: number
  gpuCount: number
  gpuModel: string | null
  gpuMemoryGiB?: number
  includedStorageGiB: number
  hourlyUsd: string
  spotHourlyUsd: string | null
  gpuHourlyUsd?: string
  gpuSpotHourlyUsd?: string
  storageUsdPerGiBMonth?: string
  ipv4HourlyUsd?: string
  maxStorageGiB?: number
  ipv4Unavailable?: string
  ipv4Free?: number
  source: string
  fetchedAt: number
}

/** Offer → flat JSON (Decimals as strings). */
export function offerToJson(o: Offer): OfferJson {
  const g = o as OfferWithGpuPart
  const j: OfferJson = {
    provider: o.provider,
    region: o.region,
    instanceType: o.instanceType,
    vcpu: o.vcpu,
    memoryGiB: o.memoryGiB,
    gpuCount: o.gpu.count,
    gpuModel: o.gpu.model ?? null,
    includedStorageGiB: o.includedStorageGiB,
    hourlyUsd: o.hourlyUsd.toString(),
    spotHourlyUsd: o.spotHourlyUsd ? o.spotHourlyUsd.toString() : null,
    source: o.source,
    fetchedAt: o.fetchedAt,
  }
  if (o.zone) j.zone = o.zone
  if (o.gpu.memoryGiB !== undefined) j.gpuMemoryGiB = o.gpu.memoryGiB
  if (g.gpuHourlyUsd) j.gpuHourlyUsd = g.gpuHourlyUsd.toString()
  if (g.gpuSpotHourlyUsd) j.gpuSpotHourlyUsd = g.gpuSpotHourlyUsd.toString()
  if (o.storageUsdPerGiBMonth) j.storageUsdPerGiBMonth = o.storageUsdPerGiBMonth.toString()
  if (o.ipv4HourlyUsd) j.ipv4HourlyUsd = o.ipv4HourlyUsd.toString()
  if (g.maxStorageGiB !== undefined) j.maxStorageGiB = g.maxStorageGiB
  if (g.ipv4Unavailable) j.ipv4Unavailable = g.ipv4Unavailable
  if (g.ipv4Free !== undefined) j.ipv4Free = g.ipv4Free
  return j
}

/** Flat JSON → Offer; throws TypeError on a malformed element. */
export function offerFromJson(j: OfferJson): Offer {
  if (!j || typeof j.provider !== 'string' || typeof j.instanceType !== 'string' || typeof j.hourlyUsd !== 'string')
    throw new TypeError(`not an offer: ${JSON.stringify(j).slice(0, 200)}`)
  const o: OfferWithGpuPart = {
    provider: j.provider,
    region: j.region,
    zone: j.zone,
    instanceType: j.instanceType,
    vcpu: j.vcpu,
    memoryGiB: j.memoryGiB,
    gpu: { count: j.gpuCount, model: j.gpuModel ?? undefined, memoryGiB: j.gpuMemoryGiB },
    includedStorageGiB: j.includedStorageGiB,
    hourlyUsd: usd(j.hourlyUsd),
    spotHourlyUsd: j.spotHourlyUsd ? usd(j.spotHourlyUsd) : undefined,
    storageUsdPerGiBMonth: j.storageUsdPerGiBMonth ? usd(j.storageUsdPerGiBMonth) : undefined,
    ipv4HourlyUsd: j.ipv4HourlyUsd ? usd(j.ipv4HourlyUsd) : undefined,
    source: j.source,
    fetchedAt: j.fetchedAt,
  }
  if (j.gpuHourlyUsd) o.gpuHourlyUsd = usd(j.gpuHourlyUsd)
  if (j.gpuSpotHourlyUsd) o.gpuSpotHourlyUsd = usd(j.gpuSpotHourlyUsd)
  if (typeof j.maxStorageGiB === 'number') o.maxStorageGiB = j.maxStorageGiB
  if (typeof j.ipv4Unavailable === 'string' && j.ipv4Unavailable) o.ipv4Unavailable = j.ipv4Unavailable
  if (typeof j.ipv4Free === 'number' && j.ipv4Free >= 0) o.ipv4Free = j.ipv4Free
  return o
}
