import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { fixture, startFakePriceSources, type FakePriceSources } from '../../test/fakes/price-sources.js'
import { azureSpecsFromOffers, fetchAzureRetail, fetchAzureRetailOffers, fetchAzureRetailPages, parseAzureRetailItems } from './azureRetail.js'
import { parseSkypilotCsv } from './skypilot.js'

let fake: FakePriceSources
beforeAll(async () => {
  fake = await startFakePriceSources()
})
afterAll(async () => {
  await fake.close()
})

const specs = azureSpecsFromOffers(parseSkypilotCsv(fixture('azure-vms-v6.part0.csv'), { cloud: 'azure', fetchedAt: 1 }).offers)
const url = () => `${fake.url}/azure/api/retail/prices?$filter=serviceName eq 'Virtual Machines'`

describe('azure-retail page by page', () => {
  test('default: each page is handed over on its own', async () => {
    const pages: string[][] = []
    await fetchAzureRetailPages({ url: url(), timeoutMs: 10_000 }, (items) => void pages.push(items.map((i) => i.armSkuName ?? '?')))
    expect(pages).toEqual([['Standard_B1s', 'Standard_B1s'], ['Premium_SSD_Managed_Disk_P10', 'Standard_D2s_v3']])
  })

  test('behavior: offers parsed per page equal the offers parsed from all items at once', async () => {
    const o = { fetchedAt: 1, specs }
    const perPage = await fetchAzureRetailOffers({ url: url(), timeoutMs: 10_000 }, o)
    const atOnce = parseAzureRetailItems(await fetchAzureRetail({ url: url(), timeoutMs: 10_000 }), o)
    expect(perPage).toEqual(atOnce)
    expect(perPage.offers.map((x) => `${x.instanceType}@${x.region}`)).toEqual(['Standard_B1s@eastus'])
    // rows keep their position over all pages
    expect(perPage.rejected.map((r) => r.row?.split(' ')[0])).toEqual(['Items[0]', 'Items[2]', 'Items[3]'])
  })
})
