import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest'
import { fixture, startFakePriceSources, type FakePriceSources } from '../../test/fakes/price-sources.js'
import { AbortedError } from '../../core/errors.js'
import { defaultPricingConfig } from '../config.js'
import { PriceSourceFetchError, PriceSourceParseError, TftRateError } from '../errors.js'
import { fetchAzureRetail } from './azureRetail.js'
import { fetchHetzner, parseHetznerPlans } from './hetzner.js'
import { fetchSkypilotCatalog, parseSkypilotCsv } from './skypilot.js'
import { fetchGridFarms, fetchGridNodes, fetchStellarTftUsd, parseGridFarmList, resolveTftUsd } from './threefold.js'
import { fetchVantageInstances, parseVantageInstances } from './vantage.js'
import { fetchVultrPlans, parseVultrPlanList } from './vultr.js'

let fake: FakePriceSources
beforeAll(async () => {
  fake = await startFakePriceSources()
})
afterAll(async () => {
  await fake.close()
})
beforeEach(() => {
  fake.reset()
  fake.requests.length = 0
})

describe('fetchers against the recorded responses', () => {
  test('default: SkyPilot AWS catalog', async () => {
    const text = await fetchSkypilotCatalog({ cloud: 'aws', url: `${fake.url}/skypilot/v8/aws/vms.csv`, timeoutMs: 10_000 })
    expect(parseSkypilotCsv(text, { cloud: 'aws', fetchedAt: 1 }).offers).toHaveLength(243 + 228)
  })

  test('behavior: Azure Retail Prices paging by NextPageLink', async () => {
    const items = await fetchAzureRetail({ url: `${fake.url}/azure/api/retail/prices?$filter=serviceName eq 'Virtual Machines'`, timeoutMs: 10_000 })
    expect(items.map((i) => i.armSkuName)).toEqual(['Standard_B1s', 'Standard_B1s', 'Premium_SSD_Managed_Disk_P10', 'Standard_D2s_v3'])
    expect(fake.requests).toHaveLength(2)
    expect(fake.requests[1]).toContain('$skip=100')
  })

  test('error: Azure paging stops at maxPages', async () => {
    await expect(fetchAzureRetail({ url: `${fake.url}/azure/api/retail/prices`, timeoutMs: 10_000, maxPages: 1 })).rejects.toThrow(PriceSourceParseError)
  })

  test('behavior: Vultr cursor paging', async () => {
    const plans = await fetchVultrPlans({ url: `${fake.url}/vultr/v2/plans?per_page=1`, timeoutMs: 10_000 })
    expect(plans.map((p) => p.id)).toEqual(['vc2-1c-1gb', 'vcg-a40-24c-120g-48vram'])
    expect(fake.requests).toEqual(['/vultr/v2/plans?per_page=1', '/vultr/v2/plans?per_page=1&cursor=page-1'])
    expect(parseVultrPlanList(plans, { fetchedAt: 1 }).offers).toHaveLength(3)
  })

  test('default: Vantage instances.json', async () => {
    const text = await fetchVantageInstances({ url: `${fake.url}/vantage/instances.json`, timeoutMs: 10_000 })
    expect(parseVantageInstances(text, { fetchedAt: 1 }).offers).toHaveLength(3)
  })

  test('default: Hetzner feed and plan pages', async () => {
    const { feed, pages } = await fetchHetzner({ url: `${fake.url}/hetzner/live_data_prices.json`, pageUrls: [`${fake.url}/hetzner/cloud/regular-performance/`], timeoutMs: 10_000 })
    expect(parseHetznerPlans(pages, feed, { fetchedAt: 1, eurUsd: '1.08' }).offers).toHaveLength(3)
  })

  test('behavior: grid proxy query asks for up nodes with free memory, pages until a short page', async () => {
    const nodes = await fetchGridNodes({ url: `${fake.url}/gridproxy/`, timeoutMs: 10_000, minFreeMemoryGiB: 2, pageSize: 1, maxPages: 5 })
    expect(nodes.map((n) => n.nodeId)).toEqual([1])
    expect(fake.requests).toEqual([
      '/gridproxy/nodes?status=up&free_mru=2147483648&size=1&page=1',
      '/gridproxy/nodes?status=up&free_mru=2147483648&size=1&page=2',
    ])
  })

  test('behavior: grid proxy farms with a free public IP, paged until a short page', async () => {
    const r = await fetchGridFarms({ url: `${fake.url}/gridproxy/`, timeoutMs: 10_000, pageSize: 1, maxPages: 5 })
    expect(r.complete).toBe(true)
    expect(r.farms.map((f) => f.farmId)).toEqual([1])
    expect(fake.requests).toEqual(['/gridproxy/farms?free_ips=1&size=1&page=1', '/gridproxy/farms?free_ips=1&size=1&page=2'])
    expect(parseGridFarmList(r.farms).freeIpv4).toEqual(new Map([[1, 11]]))
  })

  test('args: maxPages cuts the farm list, and says so', async () => {
    fake.route('/gridproxy/farms', { body: fixture('threefold-gridproxy-farms.freefarm.json'), contentType: 'application/json' })
    const r = await fetchGridFarms({ url: `${fake.url}/gridproxy`, timeoutMs: 10_000, pageSize: 1, maxPages: 2 })
    expect(r.complete).toBe(false)
    expect(r.farms).toHaveLength(2)
  })

  test('error: a farms page that is not an array, and an HTTP error', async () => {
    fake.route('/gridproxy/farms', { body: '{"error":"bad filter"}', contentType: 'application/json' })
    await expect(fetchGridFarms({ url: `${fake.url}/gridproxy`, timeoutMs: 10_000, pageSize: 50, maxPages: 2 })).rejects.toThrow(/farms page 1 is not an array/)
    fake.route('/gridproxy/farms', { status: 503, body: 'busy' })
    const err = await fetchGridFarms({ url: `${fake.url}/gridproxy`, timeoutMs: 10_000, pageSize: 50, maxPages: 2 }).catch((e) => e)
    expect(err).toBeInstanceOf(PriceSourceFetchError)
    expect(err.retryable).toBe(true)
  })

  test('default: Stellar Horizon TFT price', async () => {
    const rate = await fetchStellarTftUsd({ url: `${fake.url}/horizon`, timeoutMs: 10_000 })
    expect(rate.toString()).toBe('0.0328655')
    expect(fake.requests[0]).toContain('destination_asset_code=TFT')
    expect(fake.requests[0]).toContain('destination_amount=100')
  })

  test('behavior: resolveTftUsd combines TFChain (config) and Horizon', async () => {
    const c = { ...defaultPricingConfig('/tmp').tftUsd, stellarUrl: `${fake.url}/horizon`, tfchainPriceMusd: 33 }
    const r = await resolveTftUsd(c)
    expect(r.used.map((u) => u.source)).toEqual(['tfchain', 'stellar-horizon'])
    expect(r.usdPerTft.toString()).toBe('0.03293275')
  })

  test('error: resolveTftUsd with Horizon down leaves one source: not enough', async () => {
    fake.route('/horizon/paths/strict-receive', { status: 502, body: 'bad gateway' })
    const c = { ...defaultPricingConfig('/tmp').tftUsd, stellarUrl: `${fake.url}/horizon`, tfchainPriceMusd: 33 }
    const err = await resolveTftUsd(c).catch((e) => e)
    expect(err).toBeInstanceOf(TftRateError)
    expect(err.details.join('\n')).toContain('HTTP 502')
  })

  test('behavior: a source that cannot be read is listed as discarded, with why', async () => {
    fake.route('/horizon/paths/strict-receive', { status: 502, body: 'bad gateway' })
    const c = { ...defaultPricingConfig('/tmp').tftUsd, stellarUrl: `${fake.url}/horizon`, tfchainPriceMusd: 33, extraUsd: ['0.034'] }
    const r = await resolveTftUsd(c)
    expect(r.used.map((u) => u.source)).toEqual(['tfchain', 'config[0]'])
    expect(r.discarded).toHaveLength(1)
    expect(r.discarded[0]).toMatchObject({ source: 'stellar-horizon' })
    expect(r.discarded[0]!.why).toContain('HTTP 502')
  })
})

describe('fetch errors', () => {
  test('error: HTTP 503 is retryable, 404 is not', async () => {
    fake.route('/skypilot/v8/aws/vms.csv', { status: 503, body: 'busy' })
    const e503 = await fetchSkypilotCatalog({ cloud: 'aws', url: `${fake.url}/skypilot/v8/aws/vms.csv` }).catch((e) => e)
    expect(e503).toBeInstanceOf(PriceSourceFetchError)
    expect(e503.retryable).toBe(true)
    const e404 = await fetchSkypilotCatalog({ cloud: 'aws', url: `${fake.url}/nothing.csv` }).catch((e) => e)
    expect(e404.retryable).toBe(false)
    expect(e404.shortMessage).toContain('HTTP 404')
  })

  test('error: timeout', async () => {
    fake.route('/skypilot/v8/aws/vms.csv', { body: 'late', delayMs: 5_000 })
    const err = await fetchSkypilotCatalog({ cloud: 'aws', url: `${fake.url}/skypilot/v8/aws/vms.csv`, timeoutMs: 200 }).catch((e) => e)
    expect(err).toBeInstanceOf(PriceSourceFetchError)
    expect(err.retryable).toBe(true)
    expect(err.shortMessage).toContain('timed out after 200 ms')
  })

  test('error: aborted by the caller', async () => {
    fake.route('/skypilot/v8/aws/vms.csv', { body: 'late', delayMs: 5_000 })
    const ac = new AbortController()
    const p = fetchSkypilotCatalog({ cloud: 'aws', url: `${fake.url}/skypilot/v8/aws/vms.csv`, signal: ac.signal, timeoutMs: 10_000 })
    setTimeout(() => ac.abort(), 50)
    await expect(p).rejects.toBeInstanceOf(AbortedError)
  })
})
