import { Decimal } from 'decimal.js'
import { describe, expect, test } from 'vitest'
import { fixture } from '../test/fakes/price-sources.js'
import { Usd, usd } from '../core/money.js'
import type { Offer } from '../core/offer.js'
import type { ResourceSpec } from '../core/spec.js'
import { enrichOffers } from './catalog.js'
import { defaultPricingConfig } from './config.js'
import { regionMatches } from './regions.js'
import { resourceSpec } from '../test/helpers/spec.js'
import { offerFromJson, offerToJson } from './offerJson.js'
import { cheapest, quoteOffer } from './select.js'
import { parseSkypilotCsv } from './sources/skypilot.js'
import { parseGridNodes, pricingPolicyFromChain } from './sources/threefold.js'
import type { OfferWithGpuPart } from './sources/types.js'

const spec = (p: Partial<ResourceSpec> = {}): ResourceSpec => resourceSpec({ ports: [], ...p })

const offer = (p: Partial<Offer> & { hourly: string; spot?: string }): Offer => {
  const { hourly, spot, ...rest } = p
  return {
    provider: 'aws',
    region: 'us-east-1',
    instanceType: 't',
    vcpu: 2,
    memoryGiB: 4,
    gpu: { count: 0 },
    includedStorageGiB: 0,
    source: 'test',
    fetchedAt: 0,
    ...rest,
    hourlyUsd: usd(hourly),
    spotHourlyUsd: spot ? usd(spot) : undefined,
  }
}

const config = defaultPricingConfig('/tmp')
const catalog = enrichOffers(
  [
    ...parseSkypilotCsv(fixture('aws-vms-v8.part0.csv'), { cloud: 'aws', fetchedAt: 1 }).offers,
    ...parseSkypilotCsv(fixture('aws-vms-v8.part2.csv'), { cloud: 'aws', fetchedAt: 1 }).offers,
    ...parseSkypilotCsv(fixture('azure-vms-v6.part0.csv'), { cloud: 'azure', fetchedAt: 1 }).offers,
    ...parseSkypilotCsv(fixture('lambda-vms-v8.part0.csv'), { cloud: 'lambda', fetchedAt: 1 }).offers,
    ...parseSkypilotCsv(fixture('runpod-vms-v8.part0.csv'), { cloud: 'runpod', fetchedAt: 1 }).offers,
    ...parseSkypilotCsv(fixture('do-vms-v6.csv'), { cloud: 'do', fetchedAt: 1 }).offers,
  ],
  config,
)

describe('cheapest on the recorded catalogs', () => {
  test.each([
    ['1 vCPU anywhere: a 2-vCPU Azure B2ats beats Basic_A0 (0.018)', spec(), 'azure', 'Standard_B2ats_v2', '0.0094', 'eastus'],
    ['4 vCPU 16 GiB, on-demand', spec({ vcpu: 4, memoryGiB: 16 }), 'digitalocean', 's-8vcpu-16gb', '0.14732', 'nyc1'],
    ['spot allowed: a cheaper spot price wins', spec({ vcpu: 2, memoryGiB: 4, spotAllowed: true }), 'azure', 'Standard_A2_v2', '0.00836', 'westus3'],
    ['8 A100 GPUs: Lambda', spec({ vcpu: 8, memoryGiB: 64, gpu: { count: 8, model: 'A100' } }), 'lambda', 'gpu_8x_a100', '10.32', 'asia-northeast-1'],
    ['A100-80GB is its own model (RunPod)', spec({ gpu: { count: 1, model: 'a100 80gb' } }), 'runpod', '1x_A100-80GB_SECURE', '1.64', 'CA'],
    ['H100 (DigitalOcean)', spec({ gpu: { count: 1, model: 'H100' } }), 'digitalocean', 'gpu-h100x1-80gb', '6.74', 'tor1'],
    ['region eu-central-1 only (AWS)', spec({ vcpu: 2, memoryGiB: 4, regions: ['eu-central-1'] }), 'aws', 'a1.large', '0.0582', 'eu-central-1'],
  ])('%s', (_, s, provider, instanceType, price, region) => {
    const r = cheapest(s, catalog, { top: 3 })
    if (!r.ok) throw new Error(JSON.stringify(r.nearest.map((n) => n.why)))
    expect(r.quote.offer.provider).toBe(provider)
    expect(r.quote.offer.instanceType).toBe(instanceType)
    expect(r.quote.offer.region).toBe(region)
    expect((r.quote.spot ? r.quote.offer.spotHourlyUsd! : r.quote.offer.hourlyUsd).toString()).toBe(price)
    expect(r.alternatives.length).toBeLessThanOrEqual(2)
    for (const a of r.alternatives) expect(a.breakdown.totalUsd.gte(r.quote.breakdown.totalUsd)).toBe(true)
  })

  test('args: providers restricts to the enabled ones', () => {
    const r = cheapest(spec({ vcpu: 2, memoryGiB: 4 }), catalog, { providers: ['digitalocean'] })
    expect(r.ok && [r.quote.offer.instanceType, r.quote.offer.region, r.quote.breakdown.totalUsd.toString()]).toEqual(['s-4vcpu-8gb', 'nyc1', '0.07143'])
  })

  test('args: maxCostPerHourUsd caps the total', () => {
    const r = cheapest(spec({ gpu: { count: 8, model: 'A100' } }), catalog, { maxCostPerHourUsd: usd('10') })
    expect(r.ok).toBe(false)
    if (r.ok) return
    expect(r.reason).toBe('NO_FEASIBLE_OFFER')
    expect(r.nearest[0]!.why[0]).toMatch(/^costs 10.32 USD\/h, above the ceiling 10$/)
  })

  test('error: nearest candidates say why they fail', () => {
    const r = cheapest(spec({ vcpu: 4, memoryGiB: 16, gpu: { count: 2, model: 'B200' }, regions: ['eu'] }), catalog, {})
    expect(r.ok).toBe(false)
    if (r.ok) return
    expect(r.nearest.length).toBeGreaterThan(0)
    expect(r.nearest.length).toBeLessThanOrEqual(5)
    for (const n of r.nearest) expect(n.why.some((w) => w.includes('GPU'))).toBe(true)
  })

  test('behavior: deterministic — the same answer for a shuffled catalog', () => {
    const s = spec({ vcpu: 2, memoryGiB: 4 })
    const a = cheapest(s, catalog, { top: 5 })
    const shuffled = [...catalog].reverse()
    const b = cheapest(s, shuffled, { top: 5 })
    const key = (r: typeof a) => (r.ok ? [r.quote, ...r.alternatives].map((q) => `${q.offer.provider}/${q.offer.region}/${q.offer.zone}/${q.offer.instanceType}`) : [])
    expect(key(b)).toEqual(key(a))
  })

  test('behavior: the returned offer is the catalog object itself', () => {
    const r = cheapest(spec(), catalog, {})
    expect(r.ok && catalog.includes(r.quote.offer)).toBe(true)
  })
})

describe('breakdown arithmetic (Decimal)', () => {
  test('default: host + storage beyond the included + IPv4, × replicas', () => {
    const o = offer({ hourly: '0.0104', includedStorageGiB: 0, storageUsdPerGiBMonth: usd('0.08'), ipv4HourlyUsd: usd('0.005') })
    const q = quoteOffer(o, spec({ storageGiB: 100, ports: [443], replicas: 3 }), false)
    expect(q.breakdown.hostUsd.toString()).toBe('0.0104')
    // 100 GiB × 0.08 USD / 730 h
    expect(q.breakdown.storageUsd.eq(new Usd(8).div(730))).toBe(true)
    expect(q.breakdown.ipv4Usd.toString()).toBe('0.005')
    expect(q.breakdown.perReplicaUsd.eq(new Usd('0.0154').add(new Usd(8).div(730)))).toBe(true)
    expect(q.breakdown.totalUsd.eq(q.breakdown.perReplicaUsd.mul(3))).toBe(true)
    expect(q.replicas).toBe(3)
    // 0.1 + 0.2 style float drift never appears
    const f = quoteOffer(offer({ hourly: '0.1', ipv4HourlyUsd: usd('0.2') }), spec({ ports: [22] }), false)
    expect(f.breakdown.totalUsd.toString()).toBe('0.3')
  })

  test('behavior: GCP accelerator part shows as the GPU cost', () => {
    const text = fixture('gcp-vms-v8.part0.csv') + ',,,A100,1.0,,europe-west4,europe-west4-a,2.933912,1.12763\n'
    const gcp = parseSkypilotCsv(text, { cloud: 'gcp', fetchedAt: 1 }).offers
    const r = cheapest(spec({ gpu: { count: 1, model: 'A100' }, spotAllowed: true }), gcp, {})
    expect(r.ok).toBe(true)
    if (!r.ok) return
    expect(r.quote.spot).toBe(true)
    expect(r.quote.breakdown.hostUsd.toString()).toBe('0.31824')
    expect(r.quote.breakdown.gpuUsd.toString()).toBe('1.12763')
    expect(r.quote.breakdown.totalUsd.toString()).toBe('1.44587')
  })

  test('behavior: ThreeFold shared VM worked example through cheapest — 0.01525 USD/h', () => {
    const sample = JSON.parse(fixture('threefold-gridproxy-node-and-policy.sample.json'))
    const node = { ...sample.gridproxy_node, used_resources: { cru: 0, sru: 0, hru: 0, mru: 0 } }
    const tf = parseGridNodes(JSON.stringify([node]), { fetchedAt: 1, policy: pricingPolicyFromChain(sample.pricing_policy_example), discount: 'none' }).offers
    const r = cheapest(spec({ vcpu: 2, memoryGiB: 4, storageGiB: 50, ports: [22] }), tf, {})
    expect(r.ok).toBe(true)
    if (!r.ok) return
    expect(r.quote.offer.instanceType).toBe('node-1/2c-4g')
    expect(r.quote.breakdown.hostUsd.toString()).toBe('0.01')
    expect(r.quote.breakdown.storageUsd.toString()).toBe('0.00125')
    expect(r.quote.breakdown.ipv4Usd.toString()).toBe('0.004')
    expect(r.quote.breakdown.totalUsd.toString()).toBe('0.01525')
    // more SSD than the node has free is infeasible
    const big = cheapest(spec({ vcpu: 2, memoryGiB: 4, storageGiB: 10_000 }), tf, {})
    expect(big.ok).toBe(false)
    if (!big.ok) expect(big.nearest[0]!.why[0]).toMatch(/GiB storage free$/)
  })
})

describe('selection rules (table)', () => {
  const offers = [
    offer({ instanceType: 'a', hourly: '0.10', spot: '0.03' }),
    offer({ instanceType: 'b', hourly: '0.05' }),
    offer({ instanceType: 'c', hourly: '0.05', region: 'eu-west-1' }),
    offer({ instanceType: 'd', hourly: '0.05', provider: 'gcp', region: 'europe-west4', zone: 'europe-west4-a' }),
    offer({ instanceType: 'e', hourly: '0.01', vcpu: 1 }),
    offer({ instanceType: 'f', hourly: '0.02', includedStorageGiB: 0 }),
    offer({ instanceType: 'g', hourly: '0.04', provider: 'hetzner', region: 'nbg1', includedStorageGiB: 80 }),
  ]
  test.each([
    ['floors exclude smaller offers', spec({ vcpu: 2 }), 'f'],
    ['spot used only when allowed', spec({ vcpu: 2, spotAllowed: true }), 'f'],
    ['spot wins when cheaper than every on-demand', spec({ vcpu: 2, memoryGiB: 4, spotAllowed: true, regions: ['us-east-1'], storageGiB: 0 }), 'f'],
    ['storage without a price is infeasible; included storage is free', spec({ vcpu: 2, storageGiB: 50 }), 'g'],
    ['continent alias eu (AWS eu-west-1, GCP europe-west4, Hetzner nbg1)', spec({ vcpu: 2, regions: ['eu'] }), 'g'],
    ['prefix with boundary: europe-west matches europe-west4', spec({ vcpu: 2, regions: ['europe-west'] }), 'd'],
    ['zone name matches', spec({ vcpu: 2, regions: ['europe-west4-a'] }), 'd'],
    ['ties broken by provider, region, zone, type', spec({ vcpu: 2, regions: ['eu-west-1', 'europe-west4', 'us'] }), 'f'],
  ])('%s', (_, s, want) => {
    const r = cheapest(s, offers, {})
    expect(r.ok && r.quote.offer.instanceType).toBe(want)
  })

  test('behavior: tie-break order among equal totals', () => {
    const r = cheapest(spec({ vcpu: 2 }), offers.filter((o) => o.hourlyUsd.eq('0.05')), { top: 3 })
    expect(r.ok && [r.quote, ...r.alternatives].map((q) => q.offer.instanceType)).toEqual(['c', 'b', 'd'])
  })

  test('args: a fractional top counts whole quotes (2.5 → 2) and never picks a worse winner', () => {
    const many = Array.from({ length: 200 }, (_, i) => offer({ instanceType: `t${i}`, hourly: (0.01 + i / 1000).toFixed(3) }))
    for (const top of [2.5, 0.5, Number.NaN]) {
      const r = cheapest(spec(), many, { top })
      const want = top >= 1 ? ['t0', 't1'] : ['t0']
      expect(r.ok && [r.quote, ...r.alternatives].map((q) => q.offer.instanceType)).toEqual(want)
    }
  })

  test('behavior: spot chosen for a', () => {
    const r = cheapest(spec({ vcpu: 2, spotAllowed: true }), offers.slice(0, 2), {})
    expect(r.ok && [r.quote.offer.instanceType, r.quote.spot, r.quote.breakdown.totalUsd.toString()]).toEqual(['a', true, '0.03'])
  })

  test('behavior: replicas scale the total, and the ceiling applies to the total', () => {
    const r = cheapest(spec({ vcpu: 2, replicas: 3 }), offers, { maxCostPerHourUsd: usd('0.06') })
    expect(r.ok && [r.quote.offer.instanceType, r.quote.breakdown.totalUsd.toString()]).toEqual(['f', '0.06'])
    expect(cheapest(spec({ vcpu: 2, replicas: 4 }), offers, { maxCostPerHourUsd: usd('0.06') }).ok).toBe(false)
  })
})

describe('regionMatches', () => {
  test.each([
    ['us-east-1', 'aws', 'us-east-1', true],
    ['us-east', 'aws', 'us-east-1', true],
    ['us-east', 'gcp', 'us-east1', true],
    ['us', 'gcp', 'us-central1', true],
    ['eu', 'gcp', 'europe-west4', true],
    ['europe', 'aws', 'eu-central-1', true],
    ['eu', 'azure', 'westeurope', true],
    ['us', 'azure', 'eastus', true],
    ['ca', 'azure', 'canadacentral', false],
    ['na', 'azure', 'canadacentral', true],
    ['asia', 'azure', 'southeastasia', true],
    ['eu', 'azure', 'eastus', false],
    ['eu', 'hetzner', 'nbg1', true],
    ['asia', 'hetzner', 'sin1', true],
    ['eu', 'runpod', 'CZ', true],
    ['na', 'runpod', 'CA', true],
    ['eu', 'threefold', 'belgium', true],
    ['eu', 'digitalocean', 'ams3', true],
    ['na', 'digitalocean', 'tor1', true],
    ['asia', 'vultr', 'blr', true],
    ['eu-west', 'aws', 'eu-westx', false],
    ['oc', 'aws', 'ap-southeast-2', true],
  ] as const)('%s ~ %s %s → %s', (w, p, r, want) => {
    expect(regionMatches(w, p, r)).toBe(want)
  })
})

describe('against a brute-force reference (fast-check)', () => {
  test('behavior: the quote total is the exact minimum over feasible offers', async () => {
    const fc = await import('fast-check')
    const price = fc.integer({ min: 1, max: 3_000 }).map((n) => (n / 100_000).toString())
    const arbOffer = fc.record({
      vcpu: fc.constantFrom(1, 2, 4, 8),
      memoryGiB: fc.constantFrom(1, 2, 4, 8, 16),
      hourly: price,
      spot: fc.option(price, { nil: undefined }),
      includedStorageGiB: fc.constantFrom(0, 40, 80),
      storage: fc.option(fc.constantFrom('0.08', '0.1', '0.0681'), { nil: undefined }),
      region: fc.constantFrom('us-east-1', 'eu-west-1', 'ap-south-1'),
      ipv4: fc.option(fc.constantFrom('0.004', '0.005'), { nil: undefined }),
      noIpv4: fc.boolean(),
    })
    fc.assert(
      fc.property(
        fc.array(arbOffer, { minLength: 1, maxLength: 250, size: 'max' }),
        fc.record({ vcpu: fc.constantFrom(1, 2, 4), memoryGiB: fc.constantFrom(1, 4, 8), storageGiB: fc.constantFrom(0, 50), spotAllowed: fc.boolean(), replicas: fc.constantFrom(1, 2, 3), ports: fc.constantFrom([], [443]) }),
        (raw, s) => {
          const offers = raw.map((r, i): OfferWithGpuPart => ({
            ...offer({ instanceType: `t${i}`, vcpu: r.vcpu, memoryGiB: r.memoryGiB, hourly: r.hourly, spot: r.spot, includedStorageGiB: r.includedStorageGiB, storageUsdPerGiBMonth: r.storage ? usd(r.storage) : undefined, region: r.region, ipv4HourlyUsd: r.ipv4 ? usd(r.ipv4) : undefined }),
            ...(r.noIpv4 && { ipv4Unavailable: 'no free public IPv4' }),
          }))
          const sp = spec({ ...s, ports: [...s.ports] })
          const feasible = offers.filter(
            (o) => o.vcpu >= sp.vcpu && o.memoryGiB >= sp.memoryGiB && (sp.storageGiB <= o.includedStorageGiB || o.storageUsdPerGiBMonth) && !(sp.ports.length > 0 && o.ipv4Unavailable),
          )
          // top 1: candidates are pruned every 68 offers, so the estimate-then-exact path is exercised
          const r = cheapest(sp, offers, { top: 1 })
          if (!feasible.length) return !r.ok
          const totals = feasible.map((o) => Decimal.min(quoteOffer(o, sp, false).breakdown.totalUsd, sp.spotAllowed && o.spotHourlyUsd ? quoteOffer(o, sp, true).breakdown.totalUsd : Infinity))
          const min = Decimal.min(...totals)
          return r.ok && r.quote.breakdown.totalUsd.eq(min)
        },
      ),
      { numRuns: 200, endOnFailure: true },
    )
  })
})

describe('public IPv4 availability', () => {
  const nodes = fixture('threefold-gridproxy-nodes.devnet-node1.json')
  const policy = pricingPolicyFromChain(JSON.parse(fixture('threefold-gridproxy-node-and-policy.sample.json')).pricing_policy_example)
  // node 1's farm has no free public IP
  const tf = parseGridNodes(nodes, { fetchedAt: 1, policy, discount: 'none', farmFreeIpv4: new Map() }).offers
  const aws = offer({ hourly: '0.05', vcpu: 2, memoryGiB: 4, instanceType: 'c-with-ip', ipv4HourlyUsd: usd('0.005') })
  const offers = [...tf, aws]

  test('default: a spec without ports still gets the ThreeFold slice', () => {
    const r = cheapest(spec({ vcpu: 2, memoryGiB: 4 }), offers, {})
    expect(r.ok && r.quote.offer.instanceType).toBe('node-1/2c-4g')
  })

  test('behavior: a spec with ports skips offers that cannot have a public IPv4', () => {
    const r = cheapest(spec({ vcpu: 2, memoryGiB: 4, ports: [443] }), offers, { top: 5 })
    expect(r.ok).toBe(true)
    if (!r.ok) return
    expect(r.quote.offer.instanceType).toBe('c-with-ip')
    expect(r.quote.breakdown.totalUsd.toString()).toBe('0.055')
    expect(r.alternatives).toEqual([])
  })

  test('behavior: the same slices with a free IP in their farm are chosen, IPv4 charged', () => {
    const withIp = parseGridNodes(nodes, { fetchedAt: 1, policy, discount: 'none', farmFreeIpv4: new Map([[1, 11]]) }).offers
    const r = cheapest(spec({ vcpu: 2, memoryGiB: 4, ports: [443] }), [...withIp, aws], {})
    expect(r.ok && [r.quote.offer.instanceType, r.quote.breakdown.ipv4Usd.toString()]).toEqual(['node-1/2c-4g', '0.004'])
  })

  test('behavior: each replica needs its own address — a farm with 2 free serves 2 replicas, not 3', () => {
    const two = parseGridNodes(nodes, { fetchedAt: 1, policy, discount: 'none', farmFreeIpv4: new Map([[1, 2]]) }).offers
    expect(two.every((o) => (o as { ipv4Free?: number }).ipv4Free === 2)).toBe(true)
    const ok = cheapest(spec({ vcpu: 2, memoryGiB: 4, ports: [443], replicas: 2 }), [...two, aws], {})
    expect(ok.ok && ok.quote.offer.instanceType).toBe('node-1/2c-4g')
    const r = cheapest(spec({ vcpu: 2, memoryGiB: 4, ports: [443], replicas: 3 }), [...two, aws], { top: 5 })
    expect(r.ok && r.quote.offer.instanceType).toBe('c-with-ip')
    const none = cheapest(spec({ vcpu: 2, memoryGiB: 4, ports: [443], replicas: 3 }), two, {})
    expect(none.ok).toBe(false)
    if (none.ok) return
    for (const n of none.nearest) expect(n.why).toContain('ports 443 need a public IPv4 per replica: 3 replicas, 2 free')
    // offers round-trip through the cache with their count
    const back = offerFromJson(offerToJson(two[0]!))
    expect((back as { ipv4Free?: number }).ipv4Free).toBe(2)
  })

  test('error: only offers without IPv4 — rejected, with the reason', () => {
    const r = cheapest(spec({ vcpu: 2, memoryGiB: 4, ports: [22, 443] }), tf, {})
    expect(r.ok).toBe(false)
    if (r.ok) return
    expect(r.nearest.length).toBeGreaterThan(0)
    for (const n of r.nearest) expect(n.why).toContain('ports 22, 443 need a public IPv4: farm 1 has no free public IPv4')
  })
})
