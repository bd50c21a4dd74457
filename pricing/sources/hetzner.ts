/**
 * Hetzner Cloud, keyless: the plan pages on hetzner.com/cloud/<line>/ (HTML rows with specs and price product keys,
 * read with cheerio) joined with the site's price feed `live_data_prices.json` (net EUR per product key and
 * datacenter). '+'-joined keys are summed, except the primary IPv4 key, which is billed as the IPv4 part.
 * Also reads hand-maintained lists shaped like eu-cloud-prices' `hetzner.json`. EUR → USD by a configured rate.
 *
 * Hourly price: the feed gives monthly caps; a continuously running server pays the cap, so hourly = monthly / 730.
 * Lists that state an hourly price use it (what Hetzner bills per hour before the cap).
 */
import { load } from 'cheerio'
import type { Decimal } from 'decimal.js'
import { usd } from '../../core/money.js'
import type { Offer } from '../../core/offer.js'
import { PriceSourceParseError } from '../errors.js'
import { fetchText, type FetchParameters } from '../http.js'
import { defaultSanityLimits, screen } from '../sanity.js'
import type { ParseOptions, ParseResult, Rejected } from './types.js'

export const HOURS_PER_MONTH = 730

export type HetznerOptions = ParseOptions & {
  /** USD per EUR, decimal string. */
  eurUsd: string
  /** Primary IPv4 product key. Default CLOUD_21. */
  ipv4ProductKey?: string
}

/** Monthly (and hourly, when given) EUR prices by product key, then by datacenter (upper case; "ALL" for any). */
export type HetznerFeed = Map<string, Map<string, { monthlyEur?: Decimal; hourlyEur?: Decimal }>>

/** Parse live_data_prices.json. */
export function parseHetznerFeed(text: string): HetznerFeed {
  let data: { products?: Record<string, { locations?: Array<{ datacenter?: string; active?: boolean; prices?: { monthly?: { EUR?: string }; hourly?: { EUR?: string } } }> }> }
  try {
    data = JSON.parse(text)
  } catch (err) {
    throw new PriceSourceParseError('hetzner', 'price feed is not JSON', err)
  }
  if (!data?.products || typeof data.products !== 'object') throw new PriceSourceParseError('hetzner', 'price feed has no products')
  const feed: HetznerFeed = new Map()
  for (const [key, p] of Object.entries(data.products)) {
    const m = new Map<string, { monthlyEur?: Decimal; hourlyEur?: Decimal }>()
    for (const l of p.locations ?? []) {
      if (!l.datacenter || l.active === false) continue
      const monthly = l.prices?.monthly?.EUR
      const hourly = l.prices?.hourly?.EUR
      try {
        m.set(l.datacenter.toUpperCase(), { monthlyEur: monthly ? usd(monthly) : undefined, hourlyEur: hourly ? usd(hourly) : undefined })
      } catch {
        // an unreadable price leaves the datacenter out; its plans are rejected as unpriced
      }
    }
    feed.set(key, m)
  }
  return feed
}

export type HetznerPlanRow = {
  name: string
  vcpu: number
  memoryGiB: number
  diskGiB: number
  available: boolean
  /** Datacenters (upper case) with the product key priced there. */
  prices: Array<{ datacenters: string[]; productKey: string }>
}

const num = (s: string) => {
  const m = /(\d+(?:[.,]\d+)?)/.exec(s)
  return m ? Number(m[1]!.replace(',', '.')) : NaN
}

/** Plan rows of one hetzner.com/cloud/<line>/ page. */
export function parseHetznerPage(html: string): HetznerPlanRow[] {
  const $ = load(html)
  const rows: HetznerPlanRow[] = []
  $('.cloud-matrix-product').each((_, el) => {
    const row = $(el)
    const prices: HetznerPlanRow['prices'] = []
    row.find('.location-box ho-price-container').each((_, c) => {
      const pc = $(c)
      // hourly traffic/add-on prices carry price-type; the plan's own price does not
      if (pc.attr('price-type')) return
      const key = pc.attr('product-key')
      const loc = pc.attr('location')
      if (key && loc) prices.push({ productKey: key, datacenters: loc.split(',').map((d) => d.trim().toUpperCase()).filter(Boolean) })
    })
    rows.push({
      name: row.find('.name-cell').text().trim(),
      vcpu: num(row.find('.cpu-cell').clone().children('.arch-type-badge').remove().end().text()),
      memoryGiB: num(row.find('.ram-cell').text()),
      diskGiB: num(row.find('.drive-cell').clone().children('span').remove().end().text()),
      available: !row.hasClass('not-available'),
      prices,
    })
  })
  return rows
}

/** Join plan pages with the price feed into offers. */
export function parseHetznerPlans(pages: readonly string[], feedText: string, o: HetznerOptions): ParseResult {
  const feed = parseHetznerFeed(feedText)
  const rate = usd(o.eurUsd)
  const ipv4Key = o.ipv4ProductKey ?? 'CLOUD_21'
  const offers: Offer[] = []
  const rejected: Rejected[] = []
  const seen = new Set<string>()
  const perHour = (p: { monthlyEur?: Decimal; hourlyEur?: Decimal }) =>
    p.monthlyEur ? p.monthlyEur.div(HOURS_PER_MONTH) : (p.hourlyEur as Decimal)
  const price = (key: string, dc: string) => {
    const m = feed.get(key)
    const p = m?.get(dc) ?? m?.get('ALL')
    return p && (p.monthlyEur || p.hourlyEur) ? p : undefined
  }
  pages.forEach((html, pi) => {
    for (const r of parseHetznerPage(html)) {
      const row = `page ${pi + 1} ${r.name || '?'}`
      const why: string[] = []
      if (!r.name) why.push('no plan name')
      if (!r.available) why.push('not available (marked not-available on the page)')
      if (!(r.vcpu > 0) || !(r.memoryGiB > 0)) why.push(`unreadable specs (vcpu ${r.vcpu}, memory ${r.memoryGiB})`)
      if (!r.prices.length) why.push('no location prices')
      if (why.length) {
        rejected.push({ row, why: why.join('; ') })
        continue
      }
      for (const { datacenters, productKey } of r.prices) {
        const keys = productKey.split('+').map((k) => k.trim())
        for (const dc of datacenters) {
          const id = `${r.name}@${dc}`
          if (seen.has(id)) continue
          seen.add(id)
          let hostEur = usd('0')
          let ipv4Eur: Decimal | undefined
          const missing: string[] = []
          for (const k of keys) {
            const p = price(k, dc)
            if (!p) missing.push(k)
            else if (k === ipv4Key) ipv4Eur = perHour(p)
            else hostEur = hostEur.add(perHour(p))
          }
          if (missing.length || hostEur.isZero()) {
            rejected.push({ row: `${row}@${dc}`, why: `no price in the feed for ${missing.join(', ') || productKey} at ${dc}` })
            continue
          }
          offers.push({
            provider: 'hetzner',
            region: dc.toLowerCase(),
            instanceType: r.name.toLowerCase(),
            vcpu: r.vcpu,
            memoryGiB: r.memoryGiB,
            gpu: { count: 0 },
            includedStorageGiB: Number.isFinite(r.diskGiB) ? r.diskGiB : 0,
            hourlyUsd: hostEur.mul(rate).toDecimalPlaces(10),
            ipv4HourlyUsd: ipv4Eur?.mul(rate).toDecimalPlaces(10),
            source: 'hetzner',
            fetchedAt: o.fetchedAt,
          })
        }
      }
    }
  })
  return screen({ offers, rejected }, o.limits ?? defaultSanityLimits)
}

type HetznerList = {
  instances?: Array<{ id?: string; name?: string; vcpu?: number; ram_gb?: number; disk_gb?: number; price_hourly?: number; price_monthly?: number; currency?: string; location?: string }>
  primary_ip?: { price_monthly?: number }
  block_storage?: { price_per_gb_monthly?: number }
}

/** Parse a hand-maintained list shaped like eu-cloud-prices' hetzner.json (EUR; location "eu" = NBG1/FSN1/HEL1). */
export function parseHetznerList(text: string, o: HetznerOptions): ParseResult {
  let data: HetznerList
  try {
    data = JSON.parse(text)
  } catch (err) {
    throw new PriceSourceParseError('hetzner', 'not JSON', err)
  }
  if (!Array.isArray(data?.instances)) throw new PriceSourceParseError('hetzner', 'no instances array')
  const rate = usd(o.eurUsd)
  const eur = (n: number) => usd(String(n))
  const ipv4 = typeof data.primary_ip?.price_monthly === 'number' ? eur(data.primary_ip.price_monthly).div(HOURS_PER_MONTH).mul(rate).toDecimalPlaces(10) : undefined
  const storage = typeof data.block_storage?.price_per_gb_monthly === 'number' ? eur(data.block_storage.price_per_gb_monthly).mul(rate).toDecimalPlaces(10) : undefined
  const offers: Offer[] = []
  const rejected: Rejected[] = []
  data.instances.forEach((it, i) => {
    const row = `instances[${i}] ${it.id ?? '?'}`
    if (it.currency && it.currency !== 'EUR') return void rejected.push({ row, why: `currency ${it.currency} is not EUR` })
    if (!it.id || typeof it.vcpu !== 'number' || typeof it.ram_gb !== 'number') return void rejected.push({ row, why: 'no id, vcpu or ram_gb' })
    const hourlyEur = typeof it.price_hourly === 'number' ? eur(it.price_hourly) : typeof it.price_monthly === 'number' ? eur(it.price_monthly).div(HOURS_PER_MONTH) : undefined
    if (!hourlyEur) return void rejected.push({ row, why: 'no price' })
    offers.push({
      provider: 'hetzner',
      region: it.location ?? 'eu',
      instanceType: it.id,
      vcpu: it.vcpu,
      memoryGiB: it.ram_gb,
      gpu: { count: 0 },
      includedStorageGiB: it.disk_gb ?? 0,
      hourlyUsd: hourlyEur.mul(rate).toDecimalPlaces(10),
      ipv4HourlyUsd: ipv4,
      storageUsdPerGiBMonth: storage,
      source: 'hetzner',
      fetchedAt: o.fetchedAt,
    })
  })
  return screen({ offers, rejected }, o.limits ?? defaultSanityLimits)
}

/** Fetch the price feed and the plan pages. */
export async function fetchHetzner(p: FetchParameters & { pageUrls: readonly string[] }): Promise<{ feed: string; pages: string[] }> {
  const feed = await fetchText('hetzner', p)
  const pages: string[] = []
  for (const url of p.pageUrls) pages.push(await fetchText('hetzner', { ...p, url }))
  return { feed, pages }
}
