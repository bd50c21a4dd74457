/**
 * instances.vantage.sh `instances.json` (AWS EC2): one record per instance type, prices as strings per region and
 * OS. Linux on-demand becomes the offer price and `spot_avg` its spot price; Windows and dedicated are ignored.
 */
import { usd } from '../../core/money.js'
import type { Offer } from '../../core/offer.js'
import { PriceSourceParseError } from '../errors.js'
import { fetchText, type FetchParameters } from '../http.js'
import { canonicalGpuModel } from '../gpu.js'
import { defaultSanityLimits, screen } from '../sanity.js'
import type { ParseOptions, ParseResult, Rejected } from './types.js'

type VantageInstance = {
  instance_type?: string
  vCPU?: number
  memory?: number
  GPU?: number
  GPU_model?: string | null
  GPU_memory?: number
  pricing?: Record<string, { linux?: { ondemand?: string; spot_avg?: string } }>
}

/** Parse instances.json text. */
export function parseVantageInstances(text: string, o: ParseOptions): ParseResult {
  let data: unknown
  try {
    data = JSON.parse(text)
  } catch (err) {
    throw new PriceSourceParseError('vantage-aws', 'not JSON', err)
  }
  if (!Array.isArray(data)) throw new PriceSourceParseError('vantage-aws', 'not an array of instances')
  const offers: Offer[] = []
  const rejected: Rejected[] = []
  ;(data as VantageInstance[]).forEach((it, i) => {
    const type = it.instance_type
    if (!type || typeof it.vCPU !== 'number' || typeof it.memory !== 'number') {
      rejected.push({ row: `[${i}] ${type ?? '?'}`, why: 'no instance_type, vCPU or memory' })
      return
    }
    const gpuCount = typeof it.GPU === 'number' ? it.GPU : 0
    const gpu: Offer['gpu'] = {
      count: gpuCount,
      model: gpuCount > 0 && it.GPU_model ? canonicalGpuModel(it.GPU_model) : undefined,
      memoryGiB: gpuCount > 0 && it.GPU_memory ? it.GPU_memory / gpuCount : undefined,
    }
    for (const [region, p] of Object.entries(it.pricing ?? {})) {
      const row = `[${i}] ${type}@${region}`
      const od = p.linux?.ondemand
      if (!od) {
        rejected.push({ row, why: 'no Linux on-demand price' })
        continue
      }
      let hourlyUsd
      try {
        hourlyUsd = usd(od)
      } catch {
        rejected.push({ row, why: `Linux on-demand price ${JSON.stringify(od)} is not a number` })
        continue
      }
      let spotHourlyUsd
      try {
        spotHourlyUsd = p.linux?.spot_avg ? usd(p.linux.spot_avg) : undefined
      } catch {
        spotHourlyUsd = undefined
      }
      offers.push({
        provider: 'aws',
        region,
        instanceType: type,
        vcpu: it.vCPU,
        memoryGiB: it.memory,
        gpu: { ...gpu },
        includedStorageGiB: 0,
        hourlyUsd,
        spotHourlyUsd,
        source: 'vantage-aws',
        fetchedAt: o.fetchedAt,
      })
    }
  })
  return screen({ offers, rejected }, o.limits ?? defaultSanityLimits)
}

/** Fetch instances.json (≈100 MB; give a generous timeout). */
export function fetchVantageInstances(p: FetchParameters): Promise<string> {
  return fetchText('vantage-aws', p)
}
