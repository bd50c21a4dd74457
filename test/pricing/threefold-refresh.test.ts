/**
 * The ThreeFold catalog refresh against a real TFChain runtime (spec 61 under chopsticks) and the recorded grid proxy
 * and Stellar Horizon answers (local HTTP fake): offers priced with the policy stored on chain, TFT/USD from the chain
 * and Horizon, the configured policy standing in (noted) when the chain cannot give one, and `quote` in TFT.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { ApiPromise, WsProvider } from '@polkadot/api'
import type { ApiOptions } from '@polkadot/api/types'
import { xxhashAsHex } from '@polkadot/util-crypto'
import { Decimal } from 'decimal.js'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest'
import { createTestCommon, type Common } from '../../core/common.js'
import { createCatalog, type Catalog } from '../../pricing/catalog.js'
import { pricingCliWith } from '../../pricing/cli.js'
import { defaultPricingConfig, SourceIds, type PricingConfig } from '../../pricing/config.js'
import { fetchTfchainPricingPolicy } from '../../pricing/sources/tfchain.js'
import { cloudUnits } from '../../pricing/sources/threefold.js'
import type { OfferWithGpuPart } from '../../pricing/sources/types.js'
import { startFakePriceSources, type FakePriceSources } from '../fakes/price-sources.js'
import { startTfchain, tfchainSpec61Types, type Chopsticks } from './chopsticks.js'

const TFT_PRICE = xxhashAsHex('TFTPriceModule', 128) + xxhashAsHex('TftPrice', 128).slice(2)
// 2163 / 65536 USD per TFT, little-endian U16F16
const TFT_PRICE_BITS = '0x73080000'
const CHAIN_USD_PER_TFT = '0.0330047607421875'

let chain: Chopsticks
let fake: FakePriceSources
let dir: string
let common: Common
let shutdown: () => Promise<void>
const catalogs: Catalog[] = []

/** Store pricing policy 1 with these chain values (the rest of genesis' policy kept). */
async function setPolicy(values: { cu: number; su: number; ipu: number; discount: number }) {
  const api = await ApiPromise.create({ provider: new WsProvider(chain.wsUrl), types: tfchainSpec61Types as ApiOptions['types'], noInitWarn: true })
  try {
    const entry = api.query.tfgridModule!.pricingPolicies!
    const current = (await entry(1)).toJSON() as Record<string, { value: number; unit: string }>
    const next = api.createType('PricingPolicy', {
      ...current,
      cu: { ...current.cu, value: values.cu },
      su: { ...current.su, value: values.su },
      ipu: { ...current.ipu, value: values.ipu },
      discount_for_dedicated_nodes: values.discount,
    })
    await chain.rpc('dev_setStorage', [[[entry.key(1), next.toHex()]]])
  } finally {
    await api.disconnect()
  }
}

function config(p: { tfchainUrl: string; pricingPolicyId?: number; extraUsd?: string[] }): PricingConfig {
  const c = defaultPricingConfig(dir)
  for (const id of SourceIds) c.sources[id].enabled = id === 'threefold'
  c.sources.threefold.url = `${fake.url}/gridproxy`
  c.sources.threefold.timeoutMs = 10_000
  c.threefold.pricingPolicyId = p.pricingPolicyId ?? 1
  c.tftUsd = { ...c.tftUsd, tfchainUrl: p.tfchainUrl, tfchainTypes: tfchainSpec61Types, stellarUrl: `${fake.url}/horizon`, extraUsd: p.extraUsd ?? [], timeoutMs: 20_000 }
  return c
}

const make = (c: PricingConfig) => {
  const catalog = createCatalog(common, c, { refreshOnStart: false })
  catalogs.push(catalog)
  return catalog
}
const row = (c: Catalog) => c.health().find((h) => h.source === 'threefold')!
const offer = (c: Catalog, type: string) => c.offers().find((o) => o.instanceType === type) as OfferWithGpuPart

async function closedPort(): Promise<number> {
  const s = createServer()
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve))
  const port = (s.address() as { port: number }).port
  await new Promise((resolve) => s.close(resolve))
  return port
}

beforeAll(async () => {
  ;[chain, fake] = await Promise.all([startTfchain(), startFakePriceSources()])
})
afterAll(async () => {
  await Promise.all([chain?.stop(), fake?.close()])
})
beforeEach(async () => {
  fake.reset()
  dir = await mkdtemp(join(tmpdir(), 'threefold-refresh-'))
  const t = createTestCommon()
  common = t.common
  shutdown = () => t.shutdown(5_000)
})
afterEach(async () => {
  for (const c of catalogs.splice(0)) await c.close()
  await shutdown()
  await rm(dir, { recursive: true, force: true })
})

describe('ThreeFold refresh with TFChain (chopsticks, spec 61)', () => {
  test('default: offers priced with the policy stored on chain; TFT/USD from the chain and Horizon', async () => {
    await chain.rpc('dev_setStorage', [[[TFT_PRICE, TFT_PRICE_BITS]]])
    // values unlike both genesis' policy and the configured default, so only a live read can produce these prices
    await setPolicy({ cu: 250_000, su: 120_000, ipu: 70_000, discount: 40 })
    const read = await fetchTfchainPricingPolicy({ url: chain.wsUrl, types: tfchainSpec61Types, timeoutMs: 20_000, pricingPolicyId: 1 })
    expect(read.policy).toEqual({ cu: 250_000, su: 120_000, nu: 2000, ipu: 70_000, discountForDedicationNodes: 40 })

    const c = make(config({ tfchainUrl: chain.wsUrl }))
    await c.start()
    expect((await c.refresh('threefold'))[0]).toEqual({ source: 'threefold', ok: true, offers: 19 })
    const h = row(c)
    expect(h.notes).toBeUndefined()
    expect(h.policy).toEqual({ id: 1, from: 'tfchain', ...read.policy, specVersion: 61 })

    // USD per hour = CU × cu / 1e7 (node 1 is DIY, no discount level)
    const usdPerUnit = (v: number) => new Decimal(v).div(10_000_000)
    for (const [type, cru, mru] of [
      ['node-1/2c-4g', 2, 4],
      ['node-1/8c-32g', 8, 32],
      ['node-1/16c-64g', 16, 64],
    ] as const) {
      const o = offer(c, type)
      expect(o.hourlyUsd.eq(cloudUnits(cru, mru).mul(usdPerUnit(read.policy.cu))), type).toBe(true)
      expect(o.ipv4HourlyUsd!.eq(usdPerUnit(read.policy.ipu))).toBe(true)
      // 1 SU per 200 GiB SSD, 730 h a month
      expect(o.storageUsdPerGiBMonth!.eq(usdPerUnit(read.policy.su).div(200).mul(730))).toBe(true)
    }
    expect(offer(c, 'node-1/2c-4g').hourlyUsd.toString()).toBe('0.025')

    expect(h.tftUsd).toMatchObject({
      used: [
        { source: 'tfchain', usdPerTft: CHAIN_USD_PER_TFT },
        { source: 'stellar-horizon', usdPerTft: '0.0328655' },
      ],
      discarded: [],
    })
    expect(h.tftUsd!.usdPerTft).toBe(new Decimal(CHAIN_USD_PER_TFT).add('0.0328655').div(2).toString())

    // quote reads the cache the refresh wrote: the ThreeFold slice in TFT at that rate, +10 %
    let out = ''
    const io = { stdout: new Writable({ write: (b, _e, cb) => ((out += String(b)), cb()) }), stderr: new Writable({ write: (_b, _e, cb) => cb() }) }
    expect(await pricingCliWith(['quote', '--cpu', '2', '--memory', '4', '--top', '1', '--catalog', dir], io, config({ tfchainUrl: chain.wsUrl }))).toBe(0)
    const tft = new Decimal('0.025').div(h.tftUsd!.usdPerTft).mul('1.1').toDecimalPlaces(7, Decimal.ROUND_CEIL).toFixed(7)
    expect(out).toContain(`#1 threefold belgium node-1/2c-4g`)
    expect(out).toContain(`   ${tft} TFT/h incl. 10 % buffer, at ${h.tftUsd!.usdPerTft} USD/TFT (tfchain, stellar-horizon;`)
  })

  test('behavior: a policy id not on chain — the configured policy prices the offers, and the status says why', async () => {
    await chain.rpc('dev_setStorage', [[[TFT_PRICE, TFT_PRICE_BITS]]])
    const c = make(config({ tfchainUrl: chain.wsUrl, pricingPolicyId: 7 }))
    await c.start()
    expect((await c.refresh('threefold'))[0]!.ok).toBe(true)
    const h = row(c)
    expect(h.lastError).toBeUndefined()
    expect(h.policy).toEqual({ id: 7, from: 'config', ...defaultPricingConfig('/tmp').threefold.policy })
    expect(h.notes).toEqual(['pricing policy 7 not read from TFChain (price source tfchain returned data that is not its format: pricing policy 7 is not on chain); priced with the configured policy'])
    expect(offer(c, 'node-1/2c-4g').hourlyUsd.toString()).toBe('0.01')
    // the price still came from the chain
    expect(h.tftUsd!.used.map((u) => u.source)).toEqual(['tfchain', 'stellar-horizon'])
  })
})

describe('ThreeFold refresh with TFChain unreachable', () => {
  test('behavior: closed port — configured policy, noted; the rate from the other sources lists tfchain as discarded', async () => {
    const url = `ws://127.0.0.1:${await closedPort()}`
    const c = make(config({ tfchainUrl: url, extraUsd: ['0.033'] }))
    await c.start()
    const [r] = await c.refresh('threefold')
    expect(r).toEqual({ source: 'threefold', ok: true, offers: 19 })
    const h = row(c)
    expect(h.policy).toMatchObject({ id: 1, from: 'config', cu: 100_000 })
    expect(h.notes).toHaveLength(1)
    expect(h.notes![0]).toMatch(/^pricing policy 1 not read from TFChain \(.*ECONNREFUSED.*\); priced with the configured policy$/)
    expect(offer(c, 'node-1/2c-4g').hourlyUsd.toString()).toBe('0.01')
    expect(h.tftUsd!.used.map((u) => u.source)).toEqual(['config[0]', 'stellar-horizon'])
    expect(h.tftUsd!.discarded).toEqual([{ source: 'tfchain', why: expect.stringContaining('ECONNREFUSED') }])
  })
})
