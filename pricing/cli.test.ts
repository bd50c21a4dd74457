import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { Decimal } from 'decimal.js'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest'
import { fixture, pricingFixturesDir, startFakePriceSources, type FakePriceSources } from '../test/fakes/price-sources.js'
import { createTestCommon } from '../core/common.js'
import { createCatalog } from './catalog.js'
import { pricingCli, pricingCliWith } from './cli.js'
import { defaultPricingConfig, SourceIds } from './config.js'
import { parseSkypilotCsv } from './sources/skypilot.js'

const F = (name: string) => join(pricingFixturesDir, name)

async function run(argv: string[], config?: ReturnType<typeof defaultPricingConfig>) {
  let out = ''
  let err = ''
  const stdout = new Writable({ write: (c, _e, cb) => ((out += String(c)), cb()) })
  const stderr = new Writable({ write: (c, _e, cb) => ((err += String(c)), cb()) })
  const code = config ? await pricingCliWith(argv, { stdout, stderr }, config) : await pricingCli(argv, { stdout, stderr })
  return { code, out, err, lines: out.trim().split('\n') }
}

describe('pricing parse', () => {
  test('default: skypilot-aws prints JSON lines then the summary', async () => {
    const r = await run(['pricing', 'parse', 'skypilot-aws', F('aws-vms-v8.part0.csv')])
    expect(r.code).toBe(0)
    expect(r.lines).toHaveLength(244)
    expect(r.lines.at(-1)).toBe('offers=243 rejected=0')
    const first = JSON.parse(r.lines[0]!)
    expect(first).toMatchObject({
      provider: 'aws',
      region: 'ap-northeast-1',
      instanceType: 'a1.2xlarge',
      vcpu: 8,
      memoryGiB: 16,
      gpuCount: 0,
      gpuModel: null,
      hourlyUsd: '0.2568',
      spotHourlyUsd: '0.2568',
    })
  })

  test('behavior: rejected rows go to stderr with the reason', async () => {
    const r = await run(['pricing', 'parse', 'skypilot-gcp', F('gcp-vms-v8.part2.csv')])
    expect(r.code).toBe(0)
    expect(r.lines.at(-1)).toBe('offers=1 rejected=233')
    expect(r.err).toContain('rejected line 67: hourly price 700 is a placeholder')
    expect(r.err).toContain('rejected line 79: duplicate of line 78')
  })

  test.each([
    ['skypilot-azure', [F('azure-vms-v6.part0.csv')], 'offers=303 rejected=0'],
    ['skypilot-do', [F('do-vms-v6.csv')], 'offers=44 rejected=0'],
    ['skypilot-lambda', [F('lambda-vms-v8.part0.csv')], 'offers=96 rejected=0'],
    ['skypilot-runpod', [F('runpod-vms-v8.part0.csv')], 'offers=79 rejected=0'],
    ['azure-retail', [F('azure-retail-prices.standard_b1s_eastus.json'), '--specs', F('azure-vms-v6.part0.csv')], 'offers=1 rejected=1'],
    ['vantage-aws', [F('vantage-aws-instances.sample.json')], 'offers=3 rejected=0'],
    ['vultr-plans', [F('vultr-plans-api.fixture.json')], 'offers=3 rejected=0'],
    ['hetzner', [F('eu-cloud-prices-hetzner.json')], 'offers=25 rejected=0'],
    ['hetzner', [F('hetzner-cloud-matrix-row.fixture.html'), '--feed', F('hetzner-site-price-feed.fixture.json')], 'offers=3 rejected=1'],
    ['threefold-nodes', [F('threefold-gridproxy-nodes.devnet-node1.json')], 'offers=19 rejected=0'],
  ])('args: %s %s', async (format, args, summary) => {
    const r = await run(['pricing', 'parse', format, ...args])
    expect(r.code).toBe(0)
    expect(r.lines.at(-1)).toBe(summary)
    for (const l of r.lines.slice(0, -1)) {
      const o = JSON.parse(l)
      for (const k of ['provider', 'region', 'instanceType', 'vcpu', 'memoryGiB', 'gpuCount', 'gpuModel', 'hourlyUsd', 'spotHourlyUsd']) expect(o).toHaveProperty(k)
      expect(typeof o.hourlyUsd).toBe('string')
    }
  })

  test('error: usage', async () => {
    // PRICING_USAGE (a bad command line) is one line on stderr and exit 64
    const bad = await run(['pricing', 'parse', 'nope', F('do-vms-v6.csv')])
    expect({ code: bad.code, lines: bad.err.trim().split('\n').length }).toEqual({ code: 64, lines: 1 })
    expect((await run(['pricing', 'parse', 'skypilot-aws'])).code).toBe(64)
    const h = await run(['pricing', 'parse', 'hetzner', F('hetzner-cloud-matrix-row.fixture.html')])
    expect(h.code).toBe(64)
    expect(h.err).toContain('--feed')
    expect((await run(['pricing', 'parse', 'skypilot-aws', '/nonexistent.csv'])).code).toBe(1)
    expect((await run(['pricing', 'parse', 'skypilot-aws', F('vultr-plans-api.fixture.json')])).code).toBe(1)
  })
})

describe('quote', () => {
  let dir: string
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pricing-quote-'))
    const config = defaultPricingConfig(dir)
    for (const id of SourceIds) config.sources[id].enabled = id === 'skypilot-aws' || id === 'skypilot-do'
    const { common, shutdown } = createTestCommon()
    const loader = (file: string, cloud: 'aws' | 'do') => async ({ fetchedAt }: { fetchedAt: number }) => parseSkypilotCsv(fixture(file), { cloud, fetchedAt })
    const catalog = createCatalog(common, config, { refreshOnStart: false, loaders: { 'skypilot-aws': loader('aws-vms-v8.part0.csv', 'aws'), 'skypilot-do': loader('do-vms-v6.csv', 'do') } })
    await catalog.start()
    await catalog.refresh()
    await catalog.close()
    await shutdown()
  })
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  test('default: best offers from the cached catalog with the breakdown', async () => {
    const r = await run(['quote', '--cpu', '4', '--memory', '16', '--catalog', dir, '--top', '2'])
    expect(r.code).toBe(0)
    expect(r.out).toContain('#1 digitalocean nyc1 s-8vcpu-16gb: 8 vCPU, 16 GiB, on-demand')
    expect(r.out).toContain('0.147320 USD/h for 1 replica(s) = 0.147320 each: host 0.147320 + GPU 0.000000 + storage 0.000000 + IPv4 0.000000')
    expect(r.out).toContain('#2 digitalocean nyc2 s-8vcpu-16gb')
    expect(r.out).not.toContain('#3')
  })

  test('args: --storage --ports --replicas --region --spot --json', async () => {
    const r = await run(['quote', '--cpu', '2', '--memory', '4', '--storage', '73', '--ports', '22,443', '--replicas', '2', '--region', 'eu', '--spot', '--json', '--catalog', dir])
    expect(r.code).toBe(0)
    const q = JSON.parse(r.lines[0]!)
    expect(q.offer).toMatchObject({ provider: 'aws', region: 'eu-west-1', instanceType: 'a1.large', zone: 'euw1-az1' })
    // a1 spot equals on-demand in this recording: spot is used only when cheaper
    expect(q.spot).toBe(false)
    // 73 GiB × 0.08 USD/GiB-month / 730 h = 0.008; IPv4 0.005
    expect(q.breakdown.storageUsd).toBe('0.008')
    expect(q.breakdown.ipv4Usd).toBe('0.005')
    expect(q.breakdown).toEqual({ hostUsd: '0.0576', gpuUsd: '0', storageUsd: '0.008', ipv4Usd: '0.005', perReplicaUsd: '0.0706', totalUsd: '0.1412' })
    expect(q.replicas).toBe(2)
  })

  test('args: --gpu and own inventory from the configuration', async () => {
    const config = defaultPricingConfig(dir)
    config.own = [{ name: 'gpu-box', region: 'eu-home', vcpu: 32, memoryGiB: 256, storageGiB: 2000, gpu: { count: 2, model: 'H100' }, hourlyUsd: '3.10' }]
    const r = await run(['quote', '--cpu', '8', '--memory', '64', '--gpu', 'h100:1'], config)
    expect(r.code).toBe(0)
    expect(r.out).toContain('#1 own eu-home gpu-box: 32 vCPU, 256 GiB, 2×H100, on-demand')
    expect(r.out).toContain('#2 digitalocean tor1 gpu-h100x1-80gb')
  })

  test('behavior: cache files of sources disabled in the configuration are not quoted', async () => {
    const config = defaultPricingConfig(dir)
    config.sources['skypilot-do'].enabled = false
    const r = await run(['quote', '--cpu', '4', '--memory', '16', '--top', '5', '--json'], config)
    expect(r.code).toBe(0)
    expect(r.lines.map((l) => JSON.parse(l).offer.source)).toEqual(Array(5).fill('skypilot-aws'))
    expect(r.err).toContain('skypilot-do.json: source skypilot-do is disabled in the configuration')
  })

  test('error: no feasible offer lists the nearest and exits 1', async () => {
    const r = await run(['quote', '--cpu', '8', '--memory', '64', '--gpu', 'H100:8', '--max-usd', '40', '--catalog', dir])
    expect(r.code).toBe(1)
    expect(r.err).toContain('NO_FEASIBLE_OFFER')
    expect(r.err).toContain('digitalocean tor1 gpu-h100x8-640gb: costs 47.6 USD/h, above the ceiling 40')
  })

  test('error: usage', async () => {
    expect((await run(['quote', '--memory', '4', '--catalog', dir])).code).toBe(64)
    expect((await run(['quote', '--cpu', 'x', '--memory', '4'])).code).toBe(64)
    expect((await run(['quote', '--cpu', '1', '--memory', '1', '--max-usd', 'ten', '--catalog', dir])).code).toBe(64)
    expect((await run(['quote', '--cpu', '1', '--memory', '1', '--catalog', join(dir, 'missing')])).code).toBe(1)
    expect((await run(['pricing'])).code).toBe(64)
  })

  test.each([
    [['--top', '2.5'], '--top'],
    [['--top', '0'], '--top'],
    [['--replicas', '1.5'], '--replicas'],
    [['--gpu', 'H100:two'], '--gpu'],
    [['--gpu', 'H100:'], '--gpu'],
    [['--gpu', 'H100:1.5'], '--gpu'],
  ])('error: usage %j', async (args, flag) => {
    const r = await run(['quote', '--cpu', '1', '--memory', '1', '--catalog', dir, ...args])
    expect(r.code).toBe(64)
    expect(r.err).toContain(flag)
  })

  test('args: --gpu MODEL, COUNT and MODEL:COUNT', async () => {
    for (const g of ['H100', '1', 'H100:1']) {
      const r = await run(['quote', '--cpu', '8', '--memory', '64', '--gpu', g, '--catalog', dir, '--top', '1'])
      expect(r.code).toBe(0)
      expect(r.out).toContain('×H100')
    }
  })
})

describe('quote: ThreeFold offers in TFT', () => {
  let dir: string
  let fake: FakePriceSources
  const refresh = async () => {
    const config = defaultPricingConfig(dir)
    for (const id of SourceIds) config.sources[id].enabled = id === 'threefold'
    config.sources.threefold.url = `${fake.url}/gridproxy`
    config.tftUsd = { ...config.tftUsd, stellarUrl: `${fake.url}/horizon`, extraUsd: ['0.033'], timeoutMs: 10_000 }
    const { common, shutdown } = createTestCommon()
    const catalog = createCatalog(common, config, { refreshOnStart: false })
    await catalog.start()
    const [r] = await catalog.refresh('threefold')
    await catalog.close()
    await shutdown()
    expect(r!.ok).toBe(true)
  }
  beforeAll(async () => {
    fake = await startFakePriceSources()
  })
  beforeEach(async () => {
    fake.reset()
    dir = await mkdtemp(join(tmpdir(), 'pricing-quote-tft-'))
  })
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true })
  })
  afterAll(async () => {
    await fake.close()
  })

  test('default: the hourly cost in TFT at the catalog rate with the 10 % buffer', async () => {
    await refresh()
    const r = await run(['quote', '--cpu', '2', '--memory', '4', '--catalog', dir, '--top', '1'])
    expect(r.code).toBe(0)
    expect(r.out).toContain('#1 threefold belgium node-1/2c-4g: 2 vCPU, 4 GiB, on-demand')
    // 0.01 USD/h ÷ 0.03293275 USD/TFT × 1.1, rounded up to 7 decimals
    const tft = new Decimal('0.01').div('0.03293275').mul('1.1').toDecimalPlaces(7, Decimal.ROUND_CEIL).toFixed(7)
    expect(tft).toBe('0.3340141')
    expect(r.out).toMatch(new RegExp(`^   ${tft} TFT/h incl\\. 10 % buffer, at 0\\.03293275 USD/TFT \\(config\\[0\\], stellar-horizon; resolved \\d{4}-`, 'm'))
    expect(r.err).toBe('')
  })

  test('args: --json carries the TFT cost; --ports on a farm with free IPs adds the IPv4 price', async () => {
    await refresh()
    const r = await run(['quote', '--cpu', '2', '--memory', '4', '--ports', '443', '--replicas', '2', '--json', '--top', '1', '--catalog', dir])
    expect(r.code).toBe(0)
    const q = JSON.parse(r.lines[0]!)
    expect(q.breakdown.totalUsd).toBe('0.028')
    expect(q.tft).toMatchObject({ usdPerTft: '0.03293275', buffer: 0.1, sources: ['config[0]', 'stellar-horizon'] })
    expect(q.tft.perHour).toBe(new Decimal('0.028').div('0.03293275').mul('1.1').toDecimalPlaces(7, Decimal.ROUND_CEIL).toFixed(7).replace(/0+$/, ''))
    expect(q.tft.baseUnitsPerHour).toBe(new Decimal(q.tft.perHour).mul(1e7).toFixed(0))
  })

  test('behavior: without a rate the TFT cost is unknown, and the refresh notes are shown', async () => {
    fake.route('/horizon/paths/strict-receive', { status: 502, body: 'bad gateway' })
    fake.route('/gridproxy/farms', { body: '[]', contentType: 'application/json' })
    await refresh()
    const r = await run(['quote', '--cpu', '2', '--memory', '4', '--catalog', dir, '--top', '1'])
    expect(r.code).toBe(0)
    expect(r.out).toContain('   TFT/h unknown: no TFT/USD rate in the catalog')
    expect(r.err).toMatch(/^note: threefold: TFT\/USD not resolved/m)
    // the farm has no free IP now: a spec with ports finds nothing, and says why
    const p = await run(['quote', '--cpu', '2', '--memory', '4', '--ports', '22', '--catalog', dir])
    expect(p.code).toBe(1)
    expect(p.err).toContain('threefold belgium node-1/2c-4g: ports 22 need a public IPv4: farm 1 has no free public IPv4')
  })
})

describe('pricing import / refresh', () => {
  let dir: string
  let fake: FakePriceSources
  beforeAll(async () => {
    fake = await startFakePriceSources()
  })
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'bpo-import-'))
  })
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true })
  })
  afterAll(async () => {
    await fake.close()
  })
  const config = () => {
    const c = defaultPricingConfig(dir)
    for (const id of SourceIds) c.sources[id].enabled = false
    c.sources['vultr-plans'].enabled = true
    c.sources['vultr-plans'].url = `${fake.url}/vultr/v2/plans`
    c.sources['skypilot-aws'].url = `${fake.url}/skypilot/v8/aws/vms.csv`
    return c
  }

  test('default: import fills the cache offline from a saved file; quote then uses it', async () => {
    const r = await run(['pricing', 'import', 'vultr-plans', F('vultr-plans-api.fixture.json')], config())
    expect(r.code, r.err).toBe(0)
    expect(r.out).toMatch(/^vultr-plans: imported \d+ offers \(\d+ rows rejected\) into .*vultr-plans\.json, dated /)
    const q = await run(['quote', '--cpu', '1', '--memory', '1'], config())
    expect(q.code, q.err).toBe(0)
    expect(q.out).toContain('#1 vultr')
    // a cache file of another machine is accepted as it is, with its date
    const copy = await run(['pricing', 'import', 'vultr-plans', join(dir, 'vultr-plans.json')], config())
    expect(copy.code, copy.err).toBe(0)
  })

  test('error: import of a file that is not the source\'s format imports nothing', async () => {
    const r = await run(['pricing', 'import', 'vultr-plans', F('aws-vms-v8.part0.csv')], config())
    expect(r.code).toBe(1)
    const u = await run(['pricing', 'import', 'nope', F('aws-vms-v8.part0.csv')], config())
    expect(u.code).toBe(64)
    expect(u.err.trim().split('\n')).toHaveLength(1)
    expect(u.err).toMatch(/^error: unknown source "nope"/)
  })

  test('default: refresh prints one plain line per source when not on a terminal, then a summary', async () => {
    const r = await run(['pricing', 'refresh'], config())
    expect(r.code, r.out + r.err).toBe(0)
    expect(r.lines[0]).toMatch(/^vultr-plans: ok, \d+ offers \(\d+\.\d s\)$/)
    expect(r.lines.at(-1)).toMatch(/^1\/1 sources refreshed into /)
    expect(r.out).not.toContain('\r')
  })

  test('behavior: refresh on a terminal updates one progress line; a failing source exits 1', async () => {
    fake.route('/skypilot/v8/aws/vms.csv', { status: 503, body: 'down' })
    let out = ''
    const stdout = Object.assign(new Writable({ write: (c, _e, cb) => ((out += String(c)), cb()) }), { isTTY: true })
    const stderr = new Writable({ write: (_c, _e, cb) => cb() })
    const code = await pricingCliWith(['pricing', 'refresh', 'vultr-plans', 'skypilot-aws'], { stdout, stderr }, config())
    fake.reset()
    expect(code).toBe(1)
    expect(out).toContain('\r\x1b[Krefreshing 0/2 sources…')
    expect(out).toMatch(/skypilot-aws: failed \(\d+\.\d s\): /)
    expect(out).toMatch(/1\/2 sources refreshed/)
  })
})
