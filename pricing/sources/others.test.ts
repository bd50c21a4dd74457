import { describe, expect, test } from 'vitest'
import { fixture } from '../../test/fakes/price-sources.js'
import { PriceSourceParseError } from '../errors.js'
import { azureSpecsFromOffers, parseAzureRetail } from './azureRetail.js'
import { parseHetznerList, parseHetznerPage, parseHetznerPlans } from './hetzner.js'
import { ownOffers } from './own.js'
import { parseSkypilotCsv } from './skypilot.js'
import { parseVantageInstances } from './vantage.js'
import { parseVultrPlans } from './vultr.js'

const at = 1_700_000_000_000

describe('parseAzureRetail', () => {
  const specs = azureSpecsFromOffers(parseSkypilotCsv(fixture('azure-vms-v6.part0.csv'), { cloud: 'azure', fetchedAt: at }).offers)

  test('default: the Linux B1s row becomes an offer, the Windows row is skipped', () => {
    const r = parseAzureRetail(fixture('azure-retail-prices.standard_b1s_eastus.json'), { fetchedAt: at, specs })
    expect(r.offers).toHaveLength(1)
    expect(r.offers[0]).toMatchObject({ provider: 'azure', region: 'eastus', instanceType: 'Standard_B1s', vcpu: 1, memoryGiB: 1, source: 'azure-retail' })
    // the same 0.0104 USD/h as SkyPilot's Azure catalog for eastus
    expect(r.offers[0]!.hourlyUsd.toString()).toBe('0.0104')
    expect(r.rejected).toEqual([{ row: 'Items[0] Standard_B1s@eastus (Virtual Machines BS Series Windows / B1s)', why: 'Windows (skipped)' }])
  })

  test('args: includeWindows', () => {
    const r = parseAzureRetail(fixture('azure-retail-prices.standard_b1s_eastus.json'), { fetchedAt: at, specs, includeWindows: true })
    // Windows 0.014 and Linux 0.0104 for the same SKU: the cheaper (Linux) is kept
    expect(r.offers.map((o) => o.hourlyUsd.toString())).toEqual(['0.0104'])
  })

  test('behavior: without a spec table the API rows cannot become offers', () => {
    const r = parseAzureRetail(fixture('azure-retail-prices.standard_b1s_eastus.json'), { fetchedAt: at })
    expect(r.offers).toEqual([])
    expect(r.rejected[1]!.why).toContain('no vCPU/memory known for Standard_B1s')
  })

  test('behavior: storage rows and Windows VM rows of the D2s v3 recording are skipped', () => {
    const r = parseAzureRetail(fixture('azure-retail-prices-api.sample.json'), { fetchedAt: at, specs })
    expect(r.offers).toEqual([])
    expect(r.rejected.map((x) => x.why)).toEqual(['service Storage is not Virtual Machines', 'Windows (skipped)'])
  })

  test('behavior: spot rows merge into the on-demand offer; Low Priority is skipped', () => {
    const item = (skuName: string, price: number, product = 'Virtual Machines BS Series') => ({
      currencyCode: 'USD', retailPrice: price, armRegionName: 'eastus', productName: product, skuName, serviceName: 'Virtual Machines',
      unitOfMeasure: '1 Hour', type: 'Consumption', armSkuName: 'Standard_B1s',
    })
    const r = parseAzureRetail(JSON.stringify({ Items: [item('B1s', 0.0104), item('B1s Spot', 0.0021), item('B1s Low Priority', 0.002)] }), { fetchedAt: at, specs })
    expect(r.offers).toHaveLength(1)
    expect(r.offers[0]!.spotHourlyUsd!.toString()).toBe('0.0021')
    expect(r.rejected.map((x) => x.why)).toEqual(['Low Priority (skipped)'])
  })

  test('error: not an API page', () => {
    expect(() => parseAzureRetail('{"error":"throttled"}', { fetchedAt: at })).toThrow(PriceSourceParseError)
  })
})

describe('parseVantageInstances', () => {
  test('default: string prices per region, Linux on-demand and spot_avg', () => {
    const r = parseVantageInstances(fixture('vantage-aws-instances.sample.json'), { fetchedAt: at })
    expect(r.rejected).toEqual([])
    expect(r.offers.map((o) => [o.region, o.hourlyUsd.toString(), o.spotHourlyUsd?.toString()])).toEqual([
      ['us-east-1', '26.676', '6.669'],
      ['eu-central-1', '37.348', '8.96352'],
      ['af-south-1', '38.096', '3.8096'],
    ])
    expect(r.offers[0]).toMatchObject({ provider: 'aws', instanceType: 'x2iedn.32xlarge', vcpu: 128, memoryGiB: 4096, gpu: { count: 0 }, source: 'vantage-aws' })
  })

  test('behavior: a region without a Linux price is rejected', () => {
    const data = JSON.parse(fixture('vantage-aws-instances.sample.json'))
    delete data[0].pricing['eu-central-1'].linux
    const r = parseVantageInstances(JSON.stringify(data), { fetchedAt: at })
    expect(r.offers).toHaveLength(2)
    expect(r.rejected).toEqual([{ row: '[0] x2iedn.32xlarge@eu-central-1', why: 'no Linux on-demand price' }])
  })
})

describe('parseVultrPlans', () => {
  test('default: one offer per plan and location, GPU model from the plan id', () => {
    const r = parseVultrPlans(fixture('vultr-plans-api.fixture.json'), { fetchedAt: at })
    expect(r.offers.map((o) => `${o.instanceType}@${o.region}`)).toEqual(['vc2-1c-1gb@ewr', 'vc2-1c-1gb@ams', 'vcg-a40-24c-120g-48vram@blr'])
    expect(r.offers[0]).toMatchObject({ provider: 'vultr', vcpu: 1, memoryGiB: 1, includedStorageGiB: 25, spotHourlyUsd: undefined })
    expect(r.offers[0]!.hourlyUsd.toString()).toBe('0.007')
    expect(r.offers[2]).toMatchObject({ vcpu: 24, memoryGiB: 120, gpu: { count: 1, model: 'A40', memoryGiB: 48 } })
    expect(r.offers[2]!.hourlyUsd.toString()).toBe('1.712')
  })

  test('behavior: a bare-metal plan only deployable preemptible and without locations is rejected', () => {
    const metal = JSON.parse(fixture('vultr-plans-api.fixture.json')).plans_metal_example
    const r = parseVultrPlans(JSON.stringify({ plans_metal: [metal] }), { fetchedAt: at })
    expect(r.offers).toEqual([])
    expect(r.rejected).toEqual([{ row: 'plans[0] vbm-256c-3072gb-8-b200-gpu', why: 'not deployable on demand (deploy_ondemand: false); no locations' }])
    const ok = parseVultrPlans(JSON.stringify({ plans_metal: [{ ...metal, deploy_ondemand: true, locations: ['ewr'] }] }), { fetchedAt: at })
    expect(ok.offers[0]).toMatchObject({ vcpu: 256, memoryGiB: 3072, gpu: { count: 8, model: 'B200' } })
    expect(ok.offers[0]!.hourlyUsd.toString()).toBe('68')
    expect(ok.offers[0]!.spotHourlyUsd!.toString()).toBe('25.6')
  })
})

describe('hetzner', () => {
  const o = { fetchedAt: at, eurUsd: '1.08' }

  test('default: plan rows joined with the feed, IPv4 key split out, EUR monthly → USD hourly', () => {
    const r = parseHetznerPlans([fixture('hetzner-cloud-matrix-row.fixture.html')], fixture('hetzner-site-price-feed.fixture.json'), o)
    expect(r.offers.map((x) => x.region)).toEqual(['nbg1', 'hel1', 'sin1'])
    const nbg = r.offers[0]!
    expect(nbg).toMatchObject({ provider: 'hetzner', instanceType: 'cpx22', vcpu: 2, memoryGiB: 4, includedStorageGiB: 80 })
    // 19.49 EUR / 730 h × 1.08
    expect(nbg.hourlyUsd.toString()).toBe('0.0288345205')
    // CLOUD_21: 0.50 EUR / 730 h × 1.08
    expect(nbg.ipv4HourlyUsd!.toString()).toBe('0.000739726')
    expect(r.offers[2]!.hourlyUsd.toString()).toBe('0.0391906849') // 26.49 EUR in SIN1
    expect(r.rejected).toEqual([{ row: 'page 1 CX23', why: 'not available (marked not-available on the page)' }])
  })

  test('behavior: page rows read with cheerio', () => {
    const rows = parseHetznerPage(fixture('hetzner-cloud-matrix-row.fixture.html'))
    expect(rows).toEqual([
      { name: 'CPX22', vcpu: 2, memoryGiB: 4, diskGiB: 80, available: true, prices: [{ productKey: 'CLOUD_124+CLOUD_21', datacenters: ['NBG1', 'HEL1'] }, { productKey: 'CLOUD_124+CLOUD_21', datacenters: ['SIN1'] }] },
      { name: 'CX23', vcpu: 2, memoryGiB: 4, diskGiB: 40, available: false, prices: [{ productKey: 'CLOUD_132+CLOUD_21', datacenters: ['NBG1', 'HEL1'] }] },
    ])
  })

  test('behavior: a datacenter missing from the feed is rejected', () => {
    const html = fixture('hetzner-cloud-matrix-row.fixture.html').replace('cloud-matrix-product not-available', 'cloud-matrix-product')
    const r = parseHetznerPlans([html], fixture('hetzner-site-price-feed.fixture.json'), o)
    expect(r.offers.map((x) => `${x.instanceType}@${x.region}`)).toContain('cx23@nbg1')
    expect(r.rejected).toEqual([{ row: 'page 1 CX23@HEL1', why: 'no price in the feed for CLOUD_132 at HEL1' }])
  })

  test('behavior: the eu-cloud-prices list (hourly EUR as stated)', () => {
    const r = parseHetznerList(fixture('eu-cloud-prices-hetzner.json'), o)
    expect(r.offers).toHaveLength(25)
    const cx23 = r.offers.find((x) => x.instanceType === 'cx23')!
    expect(cx23).toMatchObject({ region: 'eu', vcpu: 2, memoryGiB: 4, includedStorageGiB: 40 })
    expect(cx23.hourlyUsd.toString()).toBe('0.012312') // 0.0114 EUR × 1.08
    expect(cx23.storageUsdPerGiBMonth!.toString()).toBe('0.073548') // 0.0681 EUR × 1.08
  })
})

describe('ownOffers', () => {
  test('default: the inventory as offers of provider own', () => {
    const r = ownOffers([{ name: 'rack-1', region: 'eu-home', vcpu: 16, memoryGiB: 64, storageGiB: 1000, gpu: { count: 1, model: 'RTX4090' }, hourlyUsd: '0.12' }], { fetchedAt: at })
    expect(r.offers[0]).toMatchObject({ provider: 'own', instanceType: 'rack-1', region: 'eu-home', includedStorageGiB: 1000, gpu: { count: 1, model: 'RTX4090' }, source: 'own-inventory' })
    expect(r.offers[0]!.hourlyUsd.toString()).toBe('0.12')
  })

  test('error: unreadable price or impossible spec', () => {
    const r = ownOffers(
      [
        { name: 'a', region: 'x', vcpu: 1, memoryGiB: 1, storageGiB: 1, hourlyUsd: 'cheap' },
        { name: 'b', region: 'x', vcpu: 0, memoryGiB: 1, storageGiB: 1, hourlyUsd: '0.1' },
      ],
      { fetchedAt: at },
    )
    expect(r.offers).toEqual([])
    expect(r.rejected.map((x) => x.why)).toEqual(['hourlyUsd "cheap" is not a decimal amount', 'vCPU 0 outside (0, 4096]'])
  })
})
