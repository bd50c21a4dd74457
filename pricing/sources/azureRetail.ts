/**
 * Azure Retail Prices API (prices.azure.com/api/retail/prices, keyless; OData `$filter`, paged by `NextPageLink`).
 * Linux consumption and spot rows become offers; Windows and Low Priority rows are skipped unless asked. The API
 * has no vCPU/memory, so specs come from a table (SkyPilot's Azure catalog); rows without one are rejected.
 */
import type { Decimal } from 'decimal.js'
import { usd } from '../../core/money.js'
import type { Offer } from '../../core/offer.js'
import { PriceSourceParseError } from '../errors.js'
import { fetchJson, type FetchParameters } from '../http.js'
import { defaultSanityLimits, screen } from '../sanity.js'
import type { ParseOptions, ParseResult, Rejected } from './types.js'

export type AzureSpec = { vcpu: number; memoryGiB: number; gpu: Offer['gpu'] }

export type ParseAzureRetailOptions = ParseOptions & {
  /** vCPU/memory/GPU by ARM SKU name (e.g. "Standard_B1s"). */
  specs?: ReadonlyMap<string, AzureSpec>
  includeWindows?: boolean
  includeLowPriority?: boolean
}

export type AzureRetailItem = {
  currencyCode?: string
  retailPrice?: number
  unitPrice?: number
  armRegionName?: string
  productName?: string
  skuName?: string
  serviceName?: string
  unitOfMeasure?: string
  type?: string
  armSkuName?: string
}

/** A spec table from offers (one per instance type), e.g. SkyPilot's Azure catalog. */
export function azureSpecsFromOffers(offers: readonly Offer[]): Map<string, AzureSpec> {
  const m = new Map<string, AzureSpec>()
  for (const o of offers) if (!m.has(o.instanceType)) m.set(o.instanceType, { vcpu: o.vcpu, memoryGiB: o.memoryGiB, gpu: { ...o.gpu } })
  return m
}

/** Parse one API page (JSON text with `Items`). */
export function parseAzureRetail(text: string, o: ParseAzureRetailOptions): ParseResult {
  let page: { Items?: unknown }
  try {
    page = JSON.parse(text)
  } catch (err) {
    throw new PriceSourceParseError('azure-retail', 'not JSON', err)
  }
  if (!page || !Array.isArray(page.Items)) throw new PriceSourceParseError('azure-retail', 'no Items array')
  return parseAzureRetailItems(page.Items as AzureRetailItem[], o)
}

/** Parse the items of one or more pages. */
export function parseAzureRetailItems(items: readonly AzureRetailItem[], o: ParseAzureRetailOptions): ParseResult {
  const parser = createAzureRetailParser(o)
  parser.add(items)
  return parser.finish()
}

/**
 * An incremental parser: `add` each page's items as it arrives (only the prices per SKU and region are kept, not the
 * items), then `finish`. Rows are numbered over all pages.
 */
export function createAzureRetailParser(o: ParseAzureRetailOptions): { add(items: readonly AzureRetailItem[]): void; finish(): ParseResult } {
  const rejected: Rejected[] = []
  const byKey = new Map<string, { row: string; sku: string; region: string; price?: Decimal; spot?: Decimal }>()
  let seen = 0
  const add = (items: readonly AzureRetailItem[]) => {
    const offset = seen
    seen += items.length
    items.forEach((it, j) => {
      const i = offset + j
      const row = `Items[${i}] ${it.armSkuName ?? '?'}@${it.armRegionName ?? '?'} (${it.productName ?? ''} / ${it.skuName ?? ''})`
      const reject = (why: string) => void rejected.push({ row, why })
      if (it.serviceName !== 'Virtual Machines') return reject(`service ${it.serviceName} is not Virtual Machines`)
      if (it.type !== 'Consumption') return reject(`price type ${it.type} is not Consumption`)
      if (it.currencyCode && it.currencyCode !== 'USD') return reject(`currency ${it.currencyCode} is not USD`)
      if (it.unitOfMeasure !== '1 Hour') return reject(`unit ${it.unitOfMeasure} is not 1 Hour`)
      const product = it.productName ?? ''
      const skuName = it.skuName ?? ''
      if (!o.includeWindows && /\bWindows\b/.test(product)) return reject('Windows (skipped)')
      if (!o.includeLowPriority && /Low Priority/i.test(skuName)) return reject('Low Priority (skipped)')
      if (!it.armSkuName || !it.armRegionName) return reject('no armSkuName or armRegionName')
      if (typeof it.retailPrice !== 'number') return reject('no retailPrice')
      const price = usd(String(it.retailPrice))
      const spot = /\bSpot$/.test(skuName)
      const key = `${it.armSkuName}|${it.armRegionName}`
      let e = byKey.get(key)
      if (!e) byKey.set(key, (e = { row, sku: it.armSkuName, region: it.armRegionName }))
      if (spot) e.spot = price
      else if (e.price && !e.price.eq(price)) e.price = e.price.lt(price) ? e.price : price
      else e.price = price
    })
  }
  const finish = (): ParseResult => {
    const offers: Offer[] = []
    for (const e of byKey.values()) {
      if (!e.price) {
        rejected.push({ row: e.row, why: 'spot price without an on-demand price' })
        continue
      }
      const spec = o.specs?.get(e.sku)
      if (!spec) {
        rejected.push({ row: e.row, why: `no vCPU/memory known for ${e.sku} (the API has none; give a spec table such as SkyPilot's Azure catalog)` })
        continue
      }
      offers.push({
        provider: 'azure',
        region: e.region,
        instanceType: e.sku,
        vcpu: spec.vcpu,
        memoryGiB: spec.memoryGiB,
        gpu: { ...spec.gpu },
        includedStorageGiB: 0,
        hourlyUsd: e.price,
        spotHourlyUsd: e.spot,
        source: 'azure-retail',
        fetchedAt: o.fetchedAt,
      })
    }
    return screen({ offers, rejected }, o.limits ?? defaultSanityLimits)
  }
  return { add, finish }
}

/** Fetch every page by following `NextPageLink` (at most `maxPages`), handing each page's items to `onPage`. */
export async function fetchAzureRetailPages(p: FetchParameters & { maxPages?: number }, onPage: (items: AzureRetailItem[]) => void): Promise<void> {
  let url: string | null | undefined = p.url
  const maxPages = p.maxPages ?? 2000
  for (let page = 0; url; page++) {
    if (page >= maxPages) throw new PriceSourceParseError('azure-retail', `more than ${maxPages} pages; raise maxPages or narrow the $filter`)
    const body = (await fetchJson('azure-retail', { ...p, url })) as { Items?: AzureRetailItem[]; NextPageLink?: string | null }
    if (!body || !Array.isArray(body.Items)) throw new PriceSourceParseError('azure-retail', `page ${page + 1} has no Items array`)
    onPage(body.Items)
    url = body.NextPageLink
  }
}

/** Fetch every page and return all items (small filters; the catalog parses page by page with fetchAzureRetailOffers). */
export async function fetchAzureRetail(p: FetchParameters & { maxPages?: number }): Promise<AzureRetailItem[]> {
  const items: AzureRetailItem[] = []
  await fetchAzureRetailPages(p, (page) => void items.push(...page))
  return items
}

/** Fetch every page and parse each as it arrives: memory holds one page and the price map, not every item. */
export async function fetchAzureRetailOffers(p: FetchParameters & { maxPages?: number }, o: ParseAzureRetailOptions): Promise<ParseResult> {
  const parser = createAzureRetailParser(o)
  await fetchAzureRetailPages(p, (items) => parser.add(items))
  return parser.finish()
}
