import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest'
import { fixture, startFakePriceSources, type FakePriceSources } from '../test/fakes/price-sources.js'
import { createTestCommon, type Common } from '../core/common.js'
import { createCatalog, PricingConfigError, readCacheDir, readCacheFile, writeCacheFile, type Catalog } from './catalog.js'
import { defaultPricingConfig, SourceIds, type PricingConfig } from './config.js'
import type { SourceLoader } from './sources/index.js'
import { usd } from '../core/money.js'
import type { OfferWithGpuPart } from './sources/types.js'

let fake: FakePriceSources
let dir: string
let common: Common
let shutdown: () => Promise<void>
const catalogs: Catalog[] = []

beforeAll(async () => {
  fake = await startFakePriceSources()
})
afterAll(async () => {
  await fake.close()
})
beforeEach(async () => {
  fake.reset()
  fake.requests.length = 0
  dir = await mkdtemp(join(tmpdir(), 'pricing-cache-'))
  const t = createTestCommon()
  common = t.common
  shutdown = () => t.shutdown(5_000)
})
afterEach(async () => {
  for (const c of catalogs.splice(0)) await c.close()
  await shutdown()
  await rm(dir, { recursive: true, force: true })
})

/** Config whose enabled sources point at the fake; `enable` lists the enabled network sources. */
function testConfig(enable: string[], p: Partial<PricingConfig> = {}): PricingConfig {
  const c = defaultPricingConfig(dir)
  for (const id of SourceIds) c.sources[id].enabled = enable.includes(id)
  c.sources['skypilot-aws'].url = `${fake.url}/skypilot/v8/aws/vms.csv`
  c.sources['skypilot-azure'].url = `${fake.url}/skypilot/v6/azure/vms.csv`
  c.sources['skypilot-do'].url = `${fake.url}/skypilot/v6/do/vms.csv`
  c.sources['azure-retail'].url = `${fake.url}/azure/api/retail/prices`
  c.sources['vultr-plans'].url = `${fake.url}/vultr/v2/plans`
  c.sources.hetzner.url = `${fake.url}/hetzner/live_data_prices.json`
  c.sources.hetzner.pageUrls = [`${fake.url}/hetzner/cloud/regular-performance/`]
  c.sources.threefold.url = `${fake.url}/gridproxy`
  // the ThreeFold refresh resolves TFT/USD: Stellar from the fake, plus a configured sample
  c.tftUsd = { ...c.tftUsd, stellarUrl: `${fake.url}/horizon`, extraUsd: ['0.033'], timeoutMs: 10_000 }
  for (const id of SourceIds) c.sources[id].timeoutMs = 10_000
  return { ...c, ...p }
}

const make = (config: PricingConfig, deps: Parameters<typeof createCatalog>[2] = { refreshOnStart: false }) => {
  const c = createCatalog(common, config, deps)
  catalogs.push(c)
  return c
}

const count = (c: Catalog, source: string) => c.health().find((h) => h.source === source)?.offers

describe('createCatalog', () => {
  test('default: refresh every enabled source, write the disk cache, report health', async () => {
    const c = make(testConfig(['skypilot-aws', 'skypilot-azure', 'azure-retail', 'vultr-plans', 'hetzner', 'threefold']))
    await c.start()
    // azure-retail takes its specs from skypilot-azure, so that one goes first
    expect((await c.refresh('skypilot-azure'))[0]).toEqual({ source: 'skypilot-azure', ok: true, offers: 303 })
    const out = await c.refresh()
    expect(out.every((o) => o.ok)).toBe(true)
    expect(count(c, 'skypilot-aws')).toBe(471)
    expect(count(c, 'azure-retail')).toBe(1)
    expect(count(c, 'vultr-plans')).toBe(3)
    expect(count(c, 'hetzner')).toBe(3)
    expect(count(c, 'threefold')).toBe(19)
    expect(c.offers()).toHaveLength(471 + 303 + 1 + 3 + 3 + 19)
    for (const h of c.health().filter((x) => x.source !== 'own-inventory')) {
      expect(h.lastError).toBeUndefined()
      expect(h.ageMs).toBeGreaterThanOrEqual(0)
    }
    const file = JSON.parse(await readFile(join(dir, 'skypilot-aws.json'), 'utf8'))
    expect(file).toMatchObject({ format: 'blueprint-operator/pricing-cache', version: 1, source: 'skypilot-aws' })
    expect(file.offers[0]).toMatchObject({ instanceType: 'a1.2xlarge', hourlyUsd: '0.2568', spotHourlyUsd: '0.2568' })
    expect(await common.metrics.render()).toContain('pricing_source_offers{source="skypilot-aws"} 471')
  })

  test('behavior: a source that goes down keeps serving its last-known-good offers', async () => {
    const c = make(testConfig(['skypilot-aws']))
    await c.start()
    await c.refresh()
    const before = c.health().find((h) => h.source === 'skypilot-aws')!
    fake.route('/skypilot/v8/aws/vms.csv', { status: 503, body: 'unavailable' })
    const [r] = await c.refresh('skypilot-aws')
    expect(r).toMatchObject({ source: 'skypilot-aws', ok: false, offers: 471 })
    expect(r!.error).toContain('HTTP 503')
    const after = c.health().find((h) => h.source === 'skypilot-aws')!
    expect(after.offers).toBe(471)
    expect(after.fetchedAt).toBe(before.fetchedAt)
    expect(after.lastError).toContain('HTTP 503')
    // recovery clears the error
    fake.reset()
    expect((await c.refresh('skypilot-aws'))[0]!.ok).toBe(true)
    expect(c.health().find((h) => h.source === 'skypilot-aws')!.lastError).toBeUndefined()
  })

  test('behavior: a refresh that shrinks a source by more than half is rejected', async () => {
    const c = make(testConfig(['skypilot-aws']))
    await c.start()
    await c.refresh()
    const shrunk = fixture('aws-vms-v8.part0.csv').split('\n').slice(0, 100).join('\n')
    fake.route('/skypilot/v8/aws/vms.csv', { body: shrunk })
    const [r] = await c.refresh('skypilot-aws')
    expect(r!.ok).toBe(false)
    expect(r!.error).toContain('shrank the source from 471 to 99 offers')
    expect(r!.error).toContain('refresh of skypilot-aws rejected, last-known-good kept')
    expect(count(c, 'skypilot-aws')).toBe(471)
    // the outcome carries no code: the refresh ended with PriceRefreshRejectedError (PRICE_REFRESH_REJECTED), which
    // the metric counts as "rejected", apart from a fetch that failed
    const metrics = await common.metrics.render()
    expect(metrics).toContain('pricing_refresh_total{result="rejected",source="skypilot-aws"} 1')
    expect(metrics).not.toContain('pricing_refresh_total{result="failed",source="skypilot-aws"}')
  })

  test('behavior: garbage (an HTML page, all-placeholder prices) never replaces a good catalog', async () => {
    const c = make(testConfig(['skypilot-aws']))
    await c.start()
    await c.refresh()
    fake.route('/skypilot/v8/aws/vms.csv', { body: '<!doctype html><html><body>Sign in</body></html>' })
    const [html] = await c.refresh('skypilot-aws')
    expect(html!.error).toContain('not its format')
    const placeholders = fixture('aws-vms-v8.part0.csv').replace(/,[\d.]+,[\d.]+,([a-z]{2}-[a-z]+-\d)/g, ',700.0,700.0,$1')
    fake.route('/skypilot/v8/aws/vms.csv', { body: placeholders })
    const [ph] = await c.refresh('skypilot-aws')
    expect(ph!.error).toContain('no usable offers')
    expect(ph!.error).toContain('placeholder')
    expect(count(c, 'skypilot-aws')).toBe(471)
  })

  test('behavior: one source down does not stop the others', async () => {
    fake.route('/skypilot/v8/aws/vms.csv', { status: 500, body: 'boom' })
    const c = make(testConfig(['skypilot-aws', 'vultr-plans']))
    await c.start()
    const out = await c.refresh()
    expect(out.map((o) => [o.source, o.ok])).toEqual([
      ['skypilot-aws', false],
      ['vultr-plans', true],
    ])
    expect(c.offers()).toHaveLength(3)
  })

  test('behavior: restart serves the disk cache without the network; own inventory is always there', async () => {
    const own = [{ name: 'rack-1', region: 'eu-home', vcpu: 16, memoryGiB: 64, storageGiB: 500, hourlyUsd: '0.05' }]
    const first = make(testConfig(['skypilot-aws']))
    await first.start()
    await first.refresh()
    const fetchedAt = first.health().find((h) => h.source === 'skypilot-aws')!.fetchedAt
    await first.close()
    fake.route('/skypilot/v8/aws/vms.csv', { status: 503, body: 'down' })
    const second = make(testConfig(['skypilot-aws'], { own }))
    await second.start()
    expect(count(second, 'skypilot-aws')).toBe(471)
    expect(second.health().find((h) => h.source === 'skypilot-aws')!.fetchedAt).toBe(fetchedAt)
    expect(second.offers()[0]).toMatchObject({ provider: 'own', instanceType: 'rack-1', source: 'own-inventory' })
    expect(second.offers()).toHaveLength(472)
    // offers() is the same array until something changes
    expect(second.offers()).toBe(second.offers())
    const cache = await readCacheDir(dir)
    expect(cache.sources).toEqual([{ source: 'skypilot-aws', offers: 471, fetchedAt }])
  })

  test('behavior: the cache of a disabled source is neither served nor listed after a restart', async () => {
    const first = make(testConfig(['vultr-plans', 'hetzner']))
    await first.start()
    expect((await first.refresh()).every((o) => o.ok)).toBe(true)
    await first.close()
    const second = make(testConfig(['hetzner']))
    await second.start()
    expect(second.offers().filter((o) => o.source === 'vultr-plans')).toEqual([])
    expect(second.offers()).toHaveLength(3)
    expect(second.health().map((h) => h.source)).toEqual(['own-inventory', 'hetzner'])
    expect(await second.refresh('vultr-plans')).toEqual([{ source: 'vultr-plans', ok: false, offers: 0, error: 'source vultr-plans is disabled' }])
    expect(second.offers().filter((o) => o.source === 'vultr-plans')).toEqual([])
  })

  test('behavior: configured storage and IPv4 prices come from the current configuration, not the cache', async () => {
    const first = make(testConfig(['skypilot-aws']))
    await first.start()
    await first.refresh()
    expect(first.offers()[0]).toMatchObject({ provider: 'aws' })
    expect(first.offers()[0]!.storageUsdPerGiBMonth?.toString()).toBe('0.08')
    await first.close()
    const file = JSON.parse(await readFile(join(dir, 'skypilot-aws.json'), 'utf8'))
    expect(file.offers[0].storageUsdPerGiBMonth).toBeUndefined()
    expect(file.offers[0].ipv4HourlyUsd).toBeUndefined()
    const cfg = testConfig(['skypilot-aws'])
    cfg.storageUsdPerGiBMonth = { ...cfg.storageUsdPerGiBMonth, aws: '0.09' }
    cfg.ipv4HourlyUsd = { ...cfg.ipv4HourlyUsd, aws: '0.006' }
    const second = make(cfg)
    await second.start()
    const o = second.offers()[0]!
    expect([o.storageUsdPerGiBMonth?.toString(), o.ipv4HourlyUsd?.toString()]).toEqual(['0.09', '0.006'])
    await second.refresh()
    const r = second.offers()[0]!
    expect([r.storageUsdPerGiBMonth?.toString(), r.ipv4HourlyUsd?.toString()]).toEqual(['0.09', '0.006'])
  })

  test('behavior: an unreadable cache file is reported, not fatal', async () => {
    await writeFile(join(dir, 'skypilot-aws.json'), '{"format":"something else"}')
    const c = make(testConfig(['skypilot-aws']))
    await c.start()
    expect(c.health().find((h) => h.source === 'skypilot-aws')!.lastError).toContain('cache unreadable')
    expect(c.offers()).toEqual([])
  })

  test('behavior: start() refreshes missing sources, and node-cron schedules later refreshes', async () => {
    const cfg = testConfig(['vultr-plans'])
    cfg.sources['vultr-plans'].refresh = '*/1 * * * * *'
    const c = make(cfg, {})
    await c.start()
    const deadline = Date.now() + 20_000
    // 2 requests per refresh (two cursor pages): wait for the start-up refresh plus at least one scheduled one
    while ((fake.requests.filter((r) => r.startsWith('/vultr/')).length < 4 || count(c, 'vultr-plans') !== 3) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100))
    expect(fake.requests.filter((r) => r.startsWith('/vultr/')).length).toBeGreaterThanOrEqual(4)
    expect(count(c, 'vultr-plans')).toBe(3)
  })

  test('behavior: close() aborts a refresh in flight', async () => {
    fake.route('/skypilot/v8/aws/vms.csv', { body: 'late', delayMs: 30_000 })
    const c = make(testConfig(['skypilot-aws']))
    await c.start()
    const p = c.refresh('skypilot-aws')
    await new Promise((r) => setTimeout(r, 100))
    await c.close()
    const [r] = await p
    expect(r!.ok).toBe(false)
    expect(r!.error).toContain('aborted')
  })

  test('behavior: a loader that throws synchronously is called again by the next refresh', async () => {
    let calls = 0
    const loader = (({ fetchedAt }: { fetchedAt: number }) => {
      calls++
      if (calls === 1) throw new Error('sync boom')
      return Promise.resolve({ offers: [{ provider: 'vultr', region: 'ewr', instanceType: 'x', vcpu: 1, memoryGiB: 1, gpu: { count: 0 }, includedStorageGiB: 0, hourlyUsd: usd('0.1'), source: 'vultr-plans', fetchedAt }], rejected: [] })
    }) as unknown as SourceLoader
    const c = make(testConfig(['vultr-plans']), { refreshOnStart: false, loaders: { 'vultr-plans': loader } })
    await c.start()
    expect(await c.refresh('vultr-plans')).toEqual([{ source: 'vultr-plans', ok: false, offers: 0, error: 'sync boom' }])
    expect(await c.refresh('vultr-plans')).toEqual([{ source: 'vultr-plans', ok: true, offers: 1 }])
    expect(calls).toBe(2)
  })

  test('behavior: a failed refresh is retried with growing delays before its next scheduled slot', async () => {
    let calls = 0
    const loader: SourceLoader = async ({ fetchedAt }) => {
      calls++
      if (calls <= 2) throw new Error(`network down (${calls})`)
      return { offers: [{ provider: 'vultr', region: 'ewr', instanceType: 'x', vcpu: 1, memoryGiB: 1, gpu: { count: 0 }, includedStorageGiB: 0, hourlyUsd: usd('0.1'), source: 'vultr-plans', fetchedAt }], rejected: [] }
    }
    // next scheduled slot a year away: only the retries can fill the catalog
    const cfg = testConfig(['vultr-plans'])
    cfg.sources['vultr-plans'].refresh = '0 0 1 1 *'
    const c = make(cfg, { loaders: { 'vultr-plans': loader }, retry: { firstDelayMs: 20, maxDelayMs: 1_000 } })
    await c.start()
    const deadline = Date.now() + 20_000
    while (count(c, 'vultr-plans') !== 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    expect(count(c, 'vultr-plans')).toBe(1)
    expect(calls).toBe(3)
    const h = c.health().find((x) => x.source === 'vultr-plans')!
    expect(h.lastError).toBeUndefined()
    expect(h.nextRetryAt).toBeUndefined()
  })

  test('behavior: close() cancels a pending retry', async () => {
    let calls = 0
    const loader: SourceLoader = async () => {
      calls++
      throw new Error('network down')
    }
    const c = make(testConfig(['vultr-plans']), { refreshOnStart: false, loaders: { 'vultr-plans': loader }, retry: { firstDelayMs: 200, maxDelayMs: 200 } })
    await c.start()
    expect((await c.refresh('vultr-plans'))[0]!.ok).toBe(false)
    expect(c.health().find((x) => x.source === 'vultr-plans')!.nextRetryAt).toBeTypeOf('number')
    await c.close()
    await new Promise((r) => setTimeout(r, 600))
    expect(calls).toBe(1)
  })

  test('behavior: concurrent cache writes of one source in one process each land whole, no temp file left', async () => {
    const offer = (i: number) => ({ provider: 'vultr' as const, region: 'ewr', instanceType: `t${i}`, vcpu: 1, memoryGiB: 1, gpu: { count: 0 }, includedStorageGiB: 0, hourlyUsd: usd('0.1'), source: 'vultr-plans', fetchedAt: i })
    const writes = Array.from({ length: 8 }, (_, i) => writeCacheFile(dir, 'vultr-plans', i, Array.from({ length: 50 * (i + 1) }, (_, j) => offer(j))))
    expect((await Promise.allSettled(writes)).map((r) => r.status)).toEqual(Array(8).fill('fulfilled'))
    const c = await readCacheFile(dir, 'vultr-plans')
    expect(c.offers).toHaveLength(50 * (c.fetchedAt + 1))
    expect((await readdir(dir)).filter((n) => n.includes('.tmp'))).toEqual([])
  })

  test('error: invalid refresh expression or own machine at construction', () => {
    const cfg = testConfig(['skypilot-aws'])
    cfg.sources['skypilot-aws'].refresh = 'every day'
    cfg.own = [{ name: 'x', region: 'r', vcpu: 1, memoryGiB: 1, storageGiB: 1, hourlyUsd: 'free' }]
    const err = (() => {
      try {
        createCatalog(common, cfg)
      } catch (e) {
        return e as PricingConfigError
      }
    })()
    expect(err).toBeInstanceOf(PricingConfigError)
    expect(err!.code).toBe('PRICING_CONFIG')
    expect(err!.details).toEqual([
      'pricing.sources.skypilot-aws.refresh: got "every day", expected a cron expression such as "5 3 * * *"',
      'pricing.own: own[0] x: hourlyUsd "free" is not a decimal amount',
    ])
  })
})

describe('ThreeFold refresh', () => {
  const row = (c: Catalog) => c.health().find((h) => h.source === 'threefold')!
  const slice = (c: Catalog) => c.offers().find((o) => o.instanceType === 'node-1/2c-4g') as OfferWithGpuPart | undefined

  test('default: without a TFChain node — configured policy, TFT/USD resolved, IPv4 checked against the farms', async () => {
    let t = 1_800_000_000_000
    const c = make(testConfig(['threefold']), { refreshOnStart: false, now: () => t })
    await c.start()
    expect((await c.refresh('threefold'))[0]).toEqual({ source: 'threefold', ok: true, offers: 19 })
    expect(fake.requests.filter((r) => r.startsWith('/gridproxy/farms'))).toEqual(['/gridproxy/farms?free_ips=1&size=500&page=1'])
    t += 60_000
    const h = row(c)
    expect(h.notes).toBeUndefined()
    expect(h.policy).toEqual({ id: 1, from: 'config', cu: 100_000, su: 50_000, nu: 15_000, ipu: 40_000, discountForDedicationNodes: 50 })
    expect(h.tftUsd).toEqual({
      usdPerTft: '0.03293275',
      used: [
        { source: 'config[0]', usdPerTft: '0.033' },
        { source: 'stellar-horizon', usdPerTft: '0.0328655' },
      ],
      discarded: [],
      resolvedAt: 1_800_000_000_000,
      ageMs: 60_000,
    })
    // farm 1 has 11 free addresses
    expect(slice(c)!.hourlyUsd.toString()).toBe('0.01')
    expect(slice(c)!.ipv4Unavailable).toBeUndefined()
  })

  test('behavior: a farm without free IPs marks its nodes; a farm list that cannot be read is noted, nothing marked', async () => {
    fake.route('/gridproxy/farms', { body: '[]', contentType: 'application/json' })
    const c = make(testConfig(['threefold']))
    await c.start()
    expect((await c.refresh('threefold'))[0]!.ok).toBe(true)
    expect(c.offers().every((o) => (o as OfferWithGpuPart).ipv4Unavailable === 'farm 1 has no free public IPv4')).toBe(true)
    fake.route('/gridproxy/farms', { status: 503, body: 'busy' })
    expect((await c.refresh('threefold'))[0]!.ok).toBe(true)
    expect(row(c).notes).toEqual([expect.stringMatching(/^public IPv4 availability unknown, no offer marked \(farms: .*HTTP 503/)])
    expect(c.offers().some((o) => (o as OfferWithGpuPart).ipv4Unavailable)).toBe(false)
  })

  test('behavior: a rate that does not resolve is noted; the last one stays, with its age', async () => {
    let t = 1_800_000_000_000
    const c = make(testConfig(['threefold']), { refreshOnStart: false, now: () => t })
    await c.start()
    await c.refresh('threefold')
    fake.route('/horizon/paths/strict-receive', { status: 502, body: 'bad gateway' })
    t += 900_000
    expect((await c.refresh('threefold'))[0]!.ok).toBe(true)
    const h = row(c)
    expect(h.fetchedAt).toBe(t)
    expect(h.notes).toHaveLength(1)
    expect(h.notes![0]).toMatch(/^TFT\/USD not resolved \(TFT\/USD rate unavailable: 1 agreeing source\(s\), 2 needed: .*stellar-horizon: .*HTTP 502/)
    expect(h.tftUsd).toMatchObject({ usdPerTft: '0.03293275', resolvedAt: 1_800_000_000_000, ageMs: 900_000 })
  })

  test('behavior: notes, policy, rate and IPv4 marks survive a restart (cache file)', async () => {
    fake.route('/gridproxy/farms', { body: '[]', contentType: 'application/json' })
    const first = make(testConfig(['threefold']))
    await first.start()
    await first.refresh('threefold')
    fake.route('/horizon/paths/strict-receive', { status: 502, body: 'bad gateway' })
    await first.refresh('threefold')
    const before = row(first)
    await first.close()
    const second = make(testConfig(['threefold']))
    await second.start()
    const after = row(second)
    expect(after.notes).toEqual(before.notes)
    expect(after.policy).toEqual(before.policy)
    expect(after.tftUsd?.usdPerTft).toBe('0.03293275')
    expect(slice(second)!.ipv4Unavailable).toBe('farm 1 has no free public IPv4')
    const cache = await readCacheDir(dir)
    expect(cache.sources[0]).toMatchObject({ source: 'threefold', offers: 19, notes: before.notes, facts: { policy: before.policy, tftUsd: { usdPerTft: '0.03293275' } } })
  })

  test('behavior: malformed facts in a cache file are dropped, the offers still served', async () => {
    const c = make(testConfig(['threefold']))
    await c.start()
    await c.refresh('threefold')
    const file = join(dir, 'threefold.json')
    const body = JSON.parse(await readFile(file, 'utf8'))
    await writeFile(file, JSON.stringify({ ...body, notes: [1], facts: { tftUsd: { usdPerTft: 'lots' }, policy: { id: 'one' } } }))
    const cache = await readCacheDir(dir)
    expect(cache.problems).toEqual([])
    expect(cache.sources).toEqual([{ source: 'threefold', offers: 19, fetchedAt: body.fetchedAt }])
  })
})
