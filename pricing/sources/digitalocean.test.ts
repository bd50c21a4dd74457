import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { Decimal } from 'decimal.js'
import fc from 'fast-check'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest'
import {
  constructedDropletPlans,
  constructedDropletsPage,
  constructedGpuPage,
  constructedGpuPlans,
  doSizesBody,
  nextDataPage,
  recordedDoSize,
} from '../../test/fakes/digitalocean-pages.js'
import { fixture, startFakePriceSources, type FakePriceSources } from '../../test/fakes/price-sources.js'
import { createTestCommon, type Common } from '../../core/common.js'
import { createCatalog, type Catalog } from '../catalog.js'
import { pricingCliWith } from '../cli.js'
import { defaultPricingConfig, SourceIds, type PricingConfig } from '../config.js'
import { PriceSourceFetchError, PriceSourceParseError } from '../errors.js'
import { cheapest } from '../select.js'
import { parseSkypilotCsv } from './skypilot.js'
import {
  DO_DROPLET_REGIONS,
  DO_GPU_REGIONS,
  digitalOceanGpuModel,
  digitalOceanJsonDocuments,
  fetchDigitalOceanPages,
  findDigitalOceanPlans,
  parseDigitalOceanPrices,
} from './digitalocean.js'

const at = 1_700_000_000_000
const o = { fetchedAt: at }
const parse = (texts: string[], extra: Partial<Parameters<typeof parseDigitalOceanPrices>[1]> = {}) => parseDigitalOceanPrices(texts, { ...o, ...extra })
/** A constructed page holding the given plan objects under props.pageProps.plans. */
const page = (plans: unknown[]) => nextDataPage({ props: { pageProps: { plans } } })
const plan = (p: Record<string, unknown> = {}) => ({ slug: 's-1vcpu-1gb', cpus: 1, memory: 1, disk: 25, price: { hourly: 0.00893, monthly: 6 }, ...p })
const ids = (r: ReturnType<typeof parse>) => r.offers.map((x) => `${x.instanceType}@${x.region}`)

describe('parseDigitalOceanPrices', () => {
  test('default: the recorded size object as a /v2/sizes body: one offer per listed region, memory MiB → GiB', () => {
    const r = parse([doSizesBody([recordedDoSize()])])
    expect(r.rejected).toEqual([])
    expect(ids(r)).toEqual(['ams3', 'fra1', 'nyc1', 'sfo3', 'sgp1', 'syd1'].map((g) => `s-1vcpu-512mb-10gb@${g}`))
    expect(r.offers[0]).toMatchObject({
      provider: 'digitalocean',
      source: 'digitalocean',
      instanceType: 's-1vcpu-512mb-10gb',
      vcpu: 1,
      memoryGiB: 0.5,
      includedStorageGiB: 10,
      gpu: { count: 0 },
      fetchedAt: at,
    })
    // price_hourly as the API states it (the decimal string of the JSON number, no float arithmetic)
    expect(r.offers[0]!.hourlyUsd.toString()).toBe('0.00595')
  })

  test('behavior: the recorded size object inside a constructed Next.js page, beside constructed page plans', () => {
    // the page wrapper and page plans are constructed (test/fakes/digitalocean-pages.ts); the size object is the recording
    const r = parse([constructedDropletsPage()])
    expect(r.rejected).toEqual([])
    expect(r.offers).toHaveLength(3 * DO_DROPLET_REGIONS.length + 6)
    // document order: sections before apiSizes; the hero's region objects (slug, no price) are not plans
    expect(ids(r).slice(0, 2)).toEqual(['s-1vcpu-1gb@nyc1', 's-1vcpu-1gb@nyc2'])
    expect(ids(r).at(-1)).toBe('s-1vcpu-512mb-10gb@syd1')
    const byId = new Map(r.offers.map((x) => [`${x.instanceType}@${x.region}`, x]))
    expect(byId.get('s-1vcpu-512mb-10gb@ams3')!.hourlyUsd.toString()).toBe('0.00595')
    expect(byId.get('s-2vcpu-4gb@blr1')).toMatchObject({ vcpu: 2, memoryGiB: 4, includedStorageGiB: 80 })
    expect(byId.get('s-2vcpu-4gb@blr1')!.hourlyUsd.toString()).toBe('0.03571')
    // c-2 has only a monthly price: 42 / 672 h
    expect(byId.get('c-2@fra1')!.hourlyUsd.toString()).toBe('0.0625')
  })

  test('behavior: GPU page plans go to the GPU regions; several pages are joined', () => {
    const r = parse([constructedDropletsPage(), constructedGpuPage()])
    expect(r.rejected).toEqual([])
    expect(r.offers).toHaveLength(3 * DO_DROPLET_REGIONS.length + 6 + constructedGpuPlans().length * DO_GPU_REGIONS.length)
    const h8 = r.offers.filter((x) => x.instanceType === 'gpu-h100x8-640gb')
    expect(h8.map((x) => x.region)).toEqual([...DO_GPU_REGIONS])
    // disk {boot: {amount: 2, unit: TiB}}: the boot disk counts, the scratch disk does not
    expect(h8[0]).toMatchObject({ vcpu: 160, memoryGiB: 1920, includedStorageGiB: 2048, gpu: { count: 8, model: 'H100', memoryGiB: 80 } })
    expect(h8[0]!.hourlyUsd.toString()).toBe('23.92')
    expect(r.offers.find((x) => x.instanceType === 'gpu-h100x1-80gb')).toMatchObject({ includedStorageGiB: 720, gpu: { count: 1, model: 'H100', memoryGiB: 80 } })
  })

  test.each([
    ['gpu-h100x1-80gb', 1, 'H100', 80],
    ['gpu-h100x8-640gb', 8, 'H100', 80],
    ['gpu-h200x8-1128gb', 8, 'H200', 141],
    ['gpu-mi300x1-192gb', 1, 'MI300X', 192],
    ['gpu-mi300x8-1536gb', 8, 'MI300X', 192],
    ['gpu-l40sx1-48gb', 1, 'L40S', 48],
    ['gpu-4000adax1-20gb', 1, 'RTX 4000 Ada', 20],
    ['gpu-6000adax1-48gb', 1, 'RTX 6000 Ada', 48],
  ])('args: GPU from the slug %s', (slug, count, model, vram) => {
    const r = parse([page([{ slug, vcpus: 8, memory: 64, price: { hourly: 1.5 } }])])
    expect(r.rejected).toEqual([])
    expect(r.offers[0]!.gpu).toEqual({ count, model, memoryGiB: vram })
  })

  test('behavior: API gpu_info (nvidia_h100) names the model as SkyPilot does, so --gpu H100:1 matches both sources', () => {
    const size = {
      ...recordedDoSize(),
      slug: 'gpu-h100x1-80gb',
      vcpus: 20,
      memory: 245760,
      disk: 720,
      price_monthly: 2278.08,
      price_hourly: 3.39,
      regions: ['tor1'],
      gpu_info: { count: 1, model: 'nvidia_h100', vram: { amount: 80, unit: 'gib' } },
    }
    const r = parse([doSizesBody([size])])
    expect(r.offers[0]).toMatchObject({ memoryGiB: 240, gpu: { count: 1, model: 'H100', memoryGiB: 80 } })
    const sky = parseSkypilotCsv(fixture('do-vms-v6.csv'), { cloud: 'do', fetchedAt: at }).offers.filter((x) => x.gpu.count === 1)
    const spec = { vcpu: 1, memoryGiB: 1, storageGiB: 0, gpu: { count: 1, model: 'H100' }, replicas: 1, minReplicas: 1, maxReplicas: 1, regions: ['tor1'], spotAllowed: false, highAvailability: false, ports: [], tier: 'basic' as const }
    const res = cheapest(spec, [...sky, ...r.offers], { top: 5 })
    expect(res.ok).toBe(true)
    if (res.ok) expect(new Set([res.quote, ...res.alternatives].map((q) => q.offer.source))).toEqual(new Set(['digitalocean', 'skypilot-do']))
  })

  test.each([
    ['nvidia_h100', 'H100'],
    ['amd_mi300x', 'MI300X'],
    ['NVIDIA H100', 'H100'],
    ['nvidia_rtx_4000_ada', 'RTX 4000 Ada'],
    ['6000ada', 'RTX 6000 Ada'],
    ['l40s', 'L40S'],
    ['nvidia_a100', 'A100'],
  ])('args: digitalOceanGpuModel(%s)', (raw, want) => {
    expect(digitalOceanGpuModel(raw)).toBe(want)
  })

  test('behavior: regions given as objects with a slug', () => {
    const r = parse([page([plan({ regions: [{ slug: 'SGP1', name: 'Singapore 1' }, 'lon1', { name: 'no slug' }] })])])
    expect(ids(r)).toEqual(['s-1vcpu-1gb@sgp1', 's-1vcpu-1gb@lon1'])
  })

  test('args: regions and gpuRegions', () => {
    const r = parse([page([plan(), plan({ slug: 'gpu-l40sx1-48gb', cpus: 8, memory: 64 })])], { regions: ['ams3'], gpuRegions: ['nyc2', 'atl1'] })
    expect(ids(r)).toEqual(['s-1vcpu-1gb@ams3', 'gpu-l40sx1-48gb@nyc2', 'gpu-l40sx1-48gb@atl1'])
  })

  // memory unit rule: snake-case API objects (price_hourly/price_monthly) state MiB; page objects GB unless a unit says otherwise
  test.each([
    ['API object, MiB', { slug: 'x', vcpus: 1, memory: 2048, price_hourly: 0.01, regions: ['nyc1'] }, 2],
    ['page object, GB', plan({ memory: 2 }), 2],
    ['page object, "512 MB"', plan({ memory: '512 MB' }), 0.5],
    ['page object, {amount, unit: MiB}', plan({ memory: { amount: 1024, unit: 'MiB' } }), 1],
    ['page object, memoryUnit MiB', plan({ memory: 4096, memoryUnit: 'MiB' }), 4],
    ['page object, 1 TiB', plan({ memory: { amount: 1, unit: 'TiB' } }), 1024],
    ['API object with memory_unit GB', { slug: 'x', vcpus: 1, memory: 8, memory_unit: 'GB', price_monthly: 48, regions: ['nyc1'] }, 8],
  ])('behavior: memory unit: %s', (_, p, gib) => {
    const r = parse([page([p])], { regions: ['nyc1'] })
    expect(r.rejected).toEqual([])
    expect(r.offers[0]!.memoryGiB).toBe(gib)
  })

  test('behavior: unavailable, unpriced, unreadable, placeholder, absurd, zero and duplicate plans are rejected with the reason', () => {
    const r = parse(
      [
        page([
          plan({ slug: 'ok' }),
          plan({ slug: 'gone', available: false }),
          plan({ slug: 'unpriced', price: { hourly: null, monthly: null } }),
          plan({ slug: 'ask', price: { monthly: 'contact sales' } }),
          plan({ slug: 'placeholder', price: { hourly: 99999 } }),
          plan({ slug: 'absurd', price: { hourly: 5000 } }),
          plan({ slug: 'free', price: { monthly: 0 } }),
          plan({ slug: 'nocpu', cpus: undefined }),
          plan({ slug: 'badunit', memory: { amount: 1, unit: 'bytes' } }),
          plan({ slug: 'ok', price: { hourly: 0.5 } }),
          { slug: 'noregions', vcpus: 1, memory: 1024, price_hourly: 0.01, regions: [] },
        ]),
      ],
      { regions: ['nyc1'] },
    )
    expect(ids(r)).toEqual(['ok@nyc1'])
    expect(r.offers[0]!.hourlyUsd.toString()).toBe('0.00893')
    expect(r.rejected).toEqual([
      { row: 'page 1 props.pageProps.plans[1] gone', why: 'not available (available: false)' },
      { row: 'page 1 props.pageProps.plans[2] unpriced', why: 'no price (neither hourly nor monthly)' },
      { row: 'page 1 props.pageProps.plans[3] ask', why: 'unreadable price (hourly undefined, monthly "contact sales")' },
      { row: 'page 1 props.pageProps.plans[7] nocpu', why: 'no vCPU count' },
      { row: 'page 1 props.pageProps.plans[8] badunit', why: 'memory unit "bytes" is not one of MB, MiB, GB, GiB, TB, TiB' },
      { row: 'page 1 props.pageProps.plans[9] ok@nyc1', why: 'duplicate of page 1 props.pageProps.plans[0] ok' },
      { row: 'page 1 props.pageProps.plans[10] noregions', why: 'no regions (regions is empty)' },
      { row: 'placeholder@nyc1', why: 'hourly price 99999 is a placeholder' },
      { row: 'absurd@nyc1', why: 'hourly price 5000 is above the sanity cap of 1000 USD/h' },
      { row: 'free@nyc1', why: 'hourly price is zero' },
    ])
  })

  test('behavior: a -spot slug gives its on-demand plan a spot price; alone it is rejected', () => {
    const gpu = { vcpus: 8, memory: 64 }
    const r = parse([page([{ slug: 'gpu-l40sx1-48gb', ...gpu, price: { hourly: 1.57 } }, { slug: 'gpu-l40sx1-48gb-spot', ...gpu, price: { hourly: 0.79 } }, { slug: 'gpu-b300x1-288gb-spot', ...gpu, price: { hourly: 2.5 } }])], {
      gpuRegions: ['tor1'],
    })
    expect(ids(r)).toEqual(['gpu-l40sx1-48gb@tor1'])
    expect(r.offers[0]!.spotHourlyUsd!.toString()).toBe('0.79')
    expect(r.rejected).toEqual([{ row: 'page 1 props.pageProps.plans[2] gpu-b300x1-288gb-spot@tor1', why: 'spot plan without an on-demand plan gpu-b300x1-288gb in tor1' }])
  })

  test('behavior: the same plan in two places of the page is one offer per region', () => {
    const r = parse([nextDataPage({ a: { plans: constructedDropletPlans() }, b: [{ featured: constructedDropletPlans()[0] }] })])
    expect(r.offers).toHaveLength(3 * DO_DROPLET_REGIONS.length)
    expect(r.rejected).toHaveLength(1)
    expect(r.rejected[0]!.row).toBe(`page 1 b[0].featured s-1vcpu-1gb@${DO_DROPLET_REGIONS.join(',')}`)
  })

  test('behavior: other application/json scripts are read; a broken one is skipped when another is JSON', () => {
    const extra = ['<script type="application/json" id="plans">{"plans":[{"slug":"s-1vcpu-2gb","cpus":1,"memory":2,"price":{"monthly":12}}]}</script>', '<script type="application/json">not json</script>']
    const r = parse([nextDataPage({ props: {} }, extra)], { regions: ['lon1'] })
    expect(ids(r)).toEqual(['s-1vcpu-2gb@lon1'])
    expect(r.offers[0]!.hourlyUsd.toString()).toBe('0.0178571429')
  })

  test('behavior: a saved __NEXT_DATA__ or /_next/data JSON is read like the page', () => {
    const data = { pageProps: { plans: constructedDropletPlans() }, __N_SSG: true }
    expect(ids(parse([JSON.stringify(data)]))).toEqual(ids(parse([nextDataPage(data)])))
  })

  test('behavior: hourly is price.hourly as stated, else monthly / 672, exactly (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 10_000_000 }), fc.boolean(), (cents, hourlyGiven) => {
        const monthly = cents / 100
        const hourly = cents / 100_000
        const r = parse([page([plan({ slug: 'p', price: hourlyGiven ? { hourly, monthly } : { monthly } })])], { regions: ['nyc1'] })
        const want = hourlyGiven ? new Decimal(String(hourly)) : new Decimal(String(monthly)).div(672).toDecimalPlaces(10)
        return r.offers.length === 1 && r.offers[0]!.hourlyUsd.eq(want)
      }),
      { numRuns: 200 },
    )
  })

  test('error: malformed JSON', () => {
    expect(() => parse(['{"sizes": [{"slug": "s-1vcpu-1gb", '])).toThrow(PriceSourceParseError)
    const err = (() => {
      try {
        parse([constructedDropletsPage(), '<html><script id="__NEXT_DATA__" type="application/json">{"props": </script></html>'])
      } catch (e) {
        return e as PriceSourceParseError
      }
    })()
    expect(err).toBeInstanceOf(PriceSourceParseError)
    expect(err!.shortMessage).toContain('page 2: __NEXT_DATA__ is not JSON')
  })

  test('error: a page without __NEXT_DATA__ (a bot wall, a redesigned page)', () => {
    expect(() => parse(['<!doctype html><html><body>Just a moment...</body></html>'])).toThrow(/page 1 has no __NEXT_DATA__/)
  })

  test('error: JSON without plan objects is a parse error, not an empty result', () => {
    expect(() => parse([nextDataPage({ props: { pageProps: { regions: [{ slug: 'nyc1' }] } } })])).toThrow(/page 1 has JSON but no plan objects/)
    expect(() => parse([doSizesBody([recordedDoSize()]), '{"sizes": []}'])).toThrow(/page 2 has JSON but no plan objects/)
  })

  test('args: walk bounds (maxDepth, maxNodes)', () => {
    let deep: unknown = { plans: [plan()] }
    for (let i = 0; i < 10; i++) deep = { next: deep }
    expect(findDigitalOceanPlans(deep)).toHaveLength(1)
    expect(findDigitalOceanPlans(deep, { maxDepth: 5 })).toEqual([])
    expect(() => findDigitalOceanPlans(deep, { maxNodes: 5 })).toThrow(/more than 5 objects/)
    // an iterative walk: a depth far beyond the call stack is no problem within maxDepth
    let deeper: unknown = plan()
    for (let i = 0; i < 20_000; i++) deeper = [deeper]
    expect(findDigitalOceanPlans(deeper, { maxDepth: 30_000 })).toHaveLength(1)
  })

  test('behavior: digitalOceanJsonDocuments takes every application/json script', () => {
    expect(digitalOceanJsonDocuments(nextDataPage({ a: 1 }, ['<script type="application/json">[2]</script>']))).toEqual([[2], { a: 1 }])
  })
})

describe('fetchDigitalOceanPages', () => {
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
    // constructed pages (see test/fakes/digitalocean-pages.ts) under DigitalOcean's paths
    fake.route('/digitalocean/pricing/droplets', { body: constructedDropletsPage(), contentType: 'text/html' })
    fake.route('/digitalocean/pricing/gpu-droplets', { body: constructedGpuPage(), contentType: 'text/html' })
  })

  test('default: the droplets page then the GPU page', async () => {
    const pages = await fetchDigitalOceanPages({ url: `${fake.url}/digitalocean/pricing/droplets`, pageUrls: [`${fake.url}/digitalocean/pricing/gpu-droplets`], timeoutMs: 10_000 })
    expect(fake.requests).toEqual(['/digitalocean/pricing/droplets', '/digitalocean/pricing/gpu-droplets'])
    expect(parse(pages).offers).toHaveLength(3 * DO_DROPLET_REGIONS.length + 6 + 6 * DO_GPU_REGIONS.length)
  })

  test('error: HTTP 503 is a retryable fetch error', async () => {
    fake.route('/digitalocean/pricing/gpu-droplets', { status: 503, body: 'busy' })
    const err = await fetchDigitalOceanPages({ url: `${fake.url}/digitalocean/pricing/droplets`, pageUrls: [`${fake.url}/digitalocean/pricing/gpu-droplets`], timeoutMs: 10_000 }).catch((e) => e)
    expect(err).toBeInstanceOf(PriceSourceFetchError)
    expect(err.retryable).toBe(true)
    expect(err.shortMessage).toContain('fetching price source digitalocean failed: HTTP 503')
  })

  describe('through the catalog', () => {
    let dir: string
    let common: Common
    let shutdown: () => Promise<void>
    const catalogs: Catalog[] = []
    beforeEach(async () => {
      dir = await mkdtemp(join(tmpdir(), 'pricing-do-'))
      const t = createTestCommon()
      common = t.common
      shutdown = () => t.shutdown(5_000)
    })
    afterEach(async () => {
      for (const c of catalogs.splice(0)) await c.close()
      await shutdown()
      await rm(dir, { recursive: true, force: true })
    })
    const config = (): PricingConfig => {
      const c = defaultPricingConfig(dir)
      for (const id of SourceIds) c.sources[id].enabled = id === 'digitalocean'
      c.sources.digitalocean.url = `${fake.url}/digitalocean/pricing/droplets`
      c.sources.digitalocean.pageUrls = [`${fake.url}/digitalocean/pricing/gpu-droplets`]
      c.sources.digitalocean.timeoutMs = 10_000
      return c
    }
    const health = (c: Catalog) => c.health().find((h) => h.source === 'digitalocean')!

    test('default: the source is opt-in, and loads through the catalog when enabled', async () => {
      expect(defaultPricingConfig(dir).sources.digitalocean.enabled).toBe(false)
      const c = createCatalog(common, config(), { refreshOnStart: false })
      catalogs.push(c)
      await c.start()
      const total = 3 * DO_DROPLET_REGIONS.length + 6 + 6 * DO_GPU_REGIONS.length
      expect(await c.refresh()).toEqual([{ source: 'digitalocean', ok: true, offers: total }])
      expect(health(c)).toMatchObject({ offers: total, rejectedRows: 0 })
      // the configured DO volume price fills the storage price the pages do not give
      expect(c.offers().find((x) => x.source === 'digitalocean')!.storageUsdPerGiBMonth!.toString()).toBe('0.1')
    })

    test('behavior: garbage (a bot wall, JSON without plans) keeps the last-known-good offers', async () => {
      const c = createCatalog(common, config(), { refreshOnStart: false })
      catalogs.push(c)
      await c.start()
      const [first] = await c.refresh('digitalocean')
      expect(first!.ok).toBe(true)
      fake.route('/digitalocean/pricing/droplets', { body: '<!doctype html><html><body>Just a moment...</body></html>', contentType: 'text/html' })
      const [wall] = await c.refresh('digitalocean')
      expect(wall!.ok).toBe(false)
      expect(wall!.error).toContain('not its format')
      fake.route('/digitalocean/pricing/droplets', { body: nextDataPage({ props: { pageProps: { redesigned: true } } }), contentType: 'text/html' })
      const [empty] = await c.refresh('digitalocean')
      expect(empty!.error).toContain('no plan objects')
      expect(health(c)).toMatchObject({ offers: first!.offers })
      expect(health(c).lastError).toContain('no plan objects')
    })
  })
})

describe('pricing parse digitalocean', () => {
  let dir: string
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pricing-do-cli-'))
  })
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true })
  })
  async function run(argv: string[]) {
    let out = ''
    let err = ''
    const stdout = new Writable({ write: (c, _e, cb) => ((out += String(c)), cb()) })
    const stderr = new Writable({ write: (c, _e, cb) => ((err += String(c)), cb()) })
    const code = await pricingCliWith(argv, { stdout, stderr }, defaultPricingConfig(dir))
    return { code, out, err, lines: out.trim().split('\n') }
  }

  test('default: an HTML page prints offers as JSON lines, rejected rows on stderr, then the summary', async () => {
    const file = join(dir, 'gpu-droplets.html')
    await writeFile(file, page([...constructedGpuPlans(), { slug: 'gpu-h200x1-141gb', vcpus: 24, memory: 240, price: { hourly: 'tbd' } }]))
    const r = await run(['pricing', 'parse', 'digitalocean', file])
    expect(r.code).toBe(0)
    expect(r.lines.at(-1)).toBe(`offers=${6 * DO_GPU_REGIONS.length} rejected=1`)
    expect(JSON.parse(r.lines[0]!)).toMatchObject({ provider: 'digitalocean', region: 'nyc2', instanceType: 'gpu-h100x1-80gb', vcpu: 20, memoryGiB: 240, gpuCount: 1, gpuModel: 'H100', hourlyUsd: '3.39', source: 'digitalocean' })
    expect(r.err).toBe('rejected page 1 props.pageProps.plans[6] gpu-h200x1-141gb: unreadable price (hourly "tbd", monthly undefined)\n')
  })

  test('args: a /v2/sizes JSON file', async () => {
    const file = join(dir, 'sizes.json')
    await writeFile(file, doSizesBody([recordedDoSize()]))
    const r = await run(['pricing', 'parse', 'digitalocean', file])
    expect(r.code).toBe(0)
    expect(r.lines.at(-1)).toBe('offers=6 rejected=0')
    expect(JSON.parse(r.lines[0]!)).toMatchObject({ region: 'ams3', instanceType: 's-1vcpu-512mb-10gb', memoryGiB: 0.5, hourlyUsd: '0.00595' })
  })

  test('error: a page without __NEXT_DATA__ exits 1 with the reason', async () => {
    const file = join(dir, 'wall.html')
    await writeFile(file, '<html><body>Access denied</body></html>')
    const r = await run(['pricing', 'parse', 'digitalocean', file])
    expect(r.code).toBe(1)
    expect(r.err).toContain('has no __NEXT_DATA__')
  })
})
