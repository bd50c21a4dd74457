import { Decimal } from 'decimal.js'
import { describe, expect, test } from 'vitest'
import { fixture } from '../../test/fakes/price-sources.js'
import { defaultPricingConfig } from '../config.js'
import { PriceSourceParseError, TftRateError } from '../errors.js'
import {
  cloudUnits,
  combineTftRates,
  discountLevelFor,
  pricingPolicyFromChain,
  parseGridFarms,
  parseGridNodes,
  parseStellarTftUsd,
  storageUnits,
  usdToTftWithBuffer,
  workloadHourlyUsd,
  type GridNode,
} from './threefold.js'
import type { OfferWithGpuPart } from './types.js'

const at = 1_700_000_000_000
const sample = JSON.parse(fixture('threefold-gridproxy-node-and-policy.sample.json'))
const policy = pricingPolicyFromChain(sample.pricing_policy_example)
const GIB = 2 ** 30
// the manual's worked examples use 720 hours per month
const monthly = (hourly: Decimal) => hourly.mul(720).toDecimalPlaces(2).toNumber()

describe('ThreeFold pricing policy', () => {
  test('default: the full-node worked example — 24 CU, 9.371 SU, 206.54 USD/month', () => {
    const t = sample.gridproxy_node.total_resources
    expect(cloudUnits(t.cru, new Decimal(t.mru).div(GIB)).toNumber()).toBe(24)
    expect(storageUnits(new Decimal(t.hru).div(GIB), new Decimal(t.sru).div(GIB)).toDecimalPlaces(3).toNumber()).toBe(sample.worked_example_full_node_rent.su)
    const w = { cru: t.cru, mruGiB: new Decimal(t.mru).div(GIB), sruGiB: new Decimal(t.sru).div(GIB), hruGiB: new Decimal(t.hru).div(GIB) }
    expect(monthly(workloadHourlyUsd(w, { policy, discount: 'none' }))).toBe(206.54)
    expect(monthly(workloadHourlyUsd({ ...w, dedicated: true }, { policy, discount: 'none' }))).toBe(103.27)
    expect(monthly(workloadHourlyUsd({ ...w, dedicated: true }, { policy, discount: 'gold' }))).toBe(41.31)
  })

  test('default: the shared VM worked example — 2 vCPU, 4 GB, 50 GB SSD, IPv4: 10.98 USD/month', () => {
    expect(cloudUnits(2, 4).toNumber()).toBe(1)
    expect(storageUnits(0, 50).toNumber()).toBe(0.25)
    expect(monthly(workloadHourlyUsd({ cru: 2, mruGiB: 4, sruGiB: 50, ipv4: 1 }, { policy, discount: 'none' }))).toBe(10.98)
  })

  test('behavior: certified nodes cost 25 % more', () => {
    const diy = workloadHourlyUsd({ cru: 2, mruGiB: 4 }, { policy, discount: 'none' })
    const cert = workloadHourlyUsd({ cru: 2, mruGiB: 4 }, { policy, discount: 'none', certified: true })
    expect(cert.div(diy).toString()).toBe('1.25')
  })

  test('discountLevelFor: months of balance', () => {
    expect([1, 1.5, 3, 6, 18].map(discountLevelFor)).toEqual(['none', 'default', 'bronze', 'silver', 'gold'])
  })
})

describe('parseGridNodes', () => {
  test('default: node 1 as a ladder of slices; used cru above total does not block CPU', () => {
    const r = parseGridNodes(fixture('threefold-gridproxy-nodes.devnet-node1.json'), { fetchedAt: at, policy, discount: 'none' })
    expect(r.rejected).toEqual([])
    // free memory: (202802933760 − 119957094400) B = 77.16 GiB → slices up to 64 GiB; cores: 24 → up to 16 vCPU
    expect(r.offers).toHaveLength(19)
    expect(Math.max(...r.offers.map((o) => o.vcpu))).toBe(16)
    expect(Math.max(...r.offers.map((o) => o.memoryGiB))).toBe(64)
    const s = r.offers.find((o) => o.instanceType === 'node-1/2c-4g')! as (typeof r.offers)[0] & { maxStorageGiB: number }
    expect(s).toMatchObject({ provider: 'threefold', region: 'belgium', zone: undefined, vcpu: 2, memoryGiB: 4, source: 'threefold' })
    expect(s.hourlyUsd.toString()).toBe('0.01') // 1 CU
    expect(s.ipv4HourlyUsd!.toString()).toBe('0.004')
    expect(s.storageUsdPerGiBMonth!.toString()).toBe('0.01825') // 0.005 USD/h per SU / 200 GiB × 730 h
    // used sru (793 GB) exceeds total sru (512 GB): no SSD left on this node
    expect(s.maxStorageGiB).toBe(0)
  })

  test('behavior: rentable node adds a dedicated offer at the dedication discount; GPU nodes only rent whole', () => {
    const node: GridNode = { ...JSON.parse(fixture('threefold-gridproxy-nodes.devnet-node1.json'))[0], rentable: true }
    const r = parseGridNodes(JSON.stringify([node, { ...node, nodeId: 2, num_gpu: 1, gpus: [{ device: 'GA102 [GeForce RTX 3080]' }], extraFee: 10_000 }, { ...node, nodeId: 3, status: 'down' }]), {
      fetchedAt: at,
      policy,
      discount: 'none',
    })
    const ded = r.offers.find((o) => o.instanceType === 'node-1/dedicated')!
    expect(ded).toMatchObject({ vcpu: 24, includedStorageGiB: 476 })
    expect(monthly(ded.hourlyUsd)).toBe(103.27)
    const gpu = r.offers.filter((o) => o.instanceType.startsWith('node-2/'))
    expect(gpu.map((o) => o.instanceType)).toEqual(['node-2/dedicated'])
    expect(gpu[0]!.gpu).toEqual({ count: 1, model: 'GA102 [GeForce RTX 3080]' })
    // extra fee: 10 USD/month over 730 h
    expect(gpu[0]!.hourlyUsd.sub(ded.hourlyUsd).toDecimalPlaces(8).toString()).toBe(new Decimal(10).div(730).toDecimalPlaces(8).toString())
    expect(r.rejected).toEqual([{ row: '[2] node 3', why: 'status down' }])
  })
})

describe('parseGridFarms', () => {
  test('default: Freefarm — 11 of its 18 public IPs are free (contract id 0)', () => {
    const r = parseGridFarms(fixture('threefold-gridproxy-farms.freefarm.json'))
    expect(r.rejected).toEqual([])
    expect(r.freeIpv4).toEqual(new Map([[1, 11]]))
  })

  test('args: current proxies spell it contract_id; a farm whose addresses are all taken has 0', () => {
    const farms = [
      { name: 'a', farmId: 7, publicIps: [{ ip: '1.2.3.4/24', contract_id: 0 }, { ip: '1.2.3.5/24', contract_id: 12 }] },
      { name: 'b', farmId: 8, publicIps: [{ ip: '1.2.3.6/24', contract_id: 3 }] },
      { name: 'c', farmId: 9, publicIps: [] },
    ]
    expect(parseGridFarms(JSON.stringify(farms)).freeIpv4).toEqual(
      new Map([
        [7, 1],
        [8, 0],
        [9, 0],
      ]),
    )
  })

  test('behavior: an address without a contract id is not counted as free; farms without id or list are rejected', () => {
    const r = parseGridFarms(JSON.stringify([{ name: 'x', farmId: 3, publicIps: [{ ip: '1.2.3.4/24' }] }, { name: 'y', publicIps: [] }, { name: 'z', farmId: 4 }]))
    expect(r.freeIpv4).toEqual(new Map([[3, 0]]))
    expect(r.rejected).toEqual([
      { row: 'farms[1] y', why: 'no farmId' },
      { row: 'farms[2] z', why: 'no publicIps list' },
    ])
  })

  test('error: not JSON, not an array', () => {
    expect(() => parseGridFarms('<html>')).toThrow(PriceSourceParseError)
    expect(() => parseGridFarms('{"farms":[]}')).toThrow(/not an array of farms/)
  })
})

describe('parseGridNodes: public IPv4', () => {
  const nodes = fixture('threefold-gridproxy-nodes.devnet-node1.json')
  const unmarked = (r: ReturnType<typeof parseGridNodes>) => r.offers.filter((o) => !(o as OfferWithGpuPart).ipv4Unavailable)

  test('default: without farm data no offer is marked', () => {
    const r = parseGridNodes(nodes, { fetchedAt: at, policy, discount: 'none' })
    expect(unmarked(r)).toHaveLength(19)
  })

  test('behavior: node 1 of Freefarm (11 free IPs) is not marked', () => {
    const { freeIpv4 } = parseGridFarms(fixture('threefold-gridproxy-farms.freefarm.json'))
    expect(unmarked(parseGridNodes(nodes, { fetchedAt: at, policy, discount: 'none', farmFreeIpv4: freeIpv4 }))).toHaveLength(19)
  })

  test('behavior: every offer of a node whose farm has none free, or is not listed, is marked with why', () => {
    for (const farmFreeIpv4 of [new Map([[1, 0]]), new Map<number, number>()]) {
      const node = { ...JSON.parse(nodes)[0], rentable: true }
      const r = parseGridNodes(JSON.stringify([node]), { fetchedAt: at, policy, discount: 'none', farmFreeIpv4 })
      expect(r.offers).toHaveLength(20)
      for (const o of r.offers) expect((o as OfferWithGpuPart).ipv4Unavailable).toBe('farm 1 has no free public IPv4')
    }
  })
})

describe('TFT/USD', () => {
  test('default: Horizon strict-receive, cheapest path', () => {
    expect(parseStellarTftUsd(fixture('stellar-horizon-tft-strict-receive.fixture.json')).toString()).toBe('0.0328655')
  })

  test('behavior: median of agreeing sources; an outlier is discarded', () => {
    const r = combineTftRates(
      [
        { source: 'tfchain', usdPerTft: new Decimal('0.033') },
        { source: 'stellar-horizon', usdPerTft: new Decimal('0.0328655') },
        { source: 'config[0]', usdPerTft: new Decimal('0.5') },
      ],
      { maxDeviation: 0.2, minSources: 2 },
    )
    expect(r.usdPerTft.toString()).toBe('0.03293275')
    expect(r.discarded.map((d) => d.source)).toEqual(['config[0]'])
  })

  test('error: fewer agreeing sources than required', () => {
    expect(() =>
      combineTftRates(
        [
          { source: 'tfchain', usdPerTft: new Decimal('0.033') },
          { source: 'stellar-horizon', usdPerTft: new Decimal('0.066') },
        ],
        { maxDeviation: 0.2, minSources: 2 },
      ),
    ).toThrow(TftRateError)
  })

  test('usdToTftWithBuffer: rounds up, 7 decimals, buffer added', () => {
    // 10.98 USD at 0.033 USD/TFT = 332.7272... TFT, +10 % = 366.0 TFT
    expect(usdToTftWithBuffer(new Decimal('10.98'), new Decimal('0.033'), 0.1)).toBe(3_660_000_000n)
    expect(usdToTftWithBuffer(new Decimal('1'), new Decimal('3'), 0)).toBe(3_333_334n)
    expect(() => usdToTftWithBuffer(new Decimal('1'), new Decimal('0'), 0)).toThrow(TftRateError)
  })

  test('args: default config combines ≥ 2 sources and carries the chain policy', () => {
    expect(defaultPricingConfig('/tmp').threefold.policy).toEqual(policy)
    const c = defaultPricingConfig('/tmp').tftUsd
    expect(c.minSources).toBe(2)
    expect(c.stellarEnabled).toBe(true)
  })
})
