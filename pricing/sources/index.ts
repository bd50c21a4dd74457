/**
 * How the catalog loads each network source: fetch (with the source's URL and timeout) then parse.
 */
import type { Offer } from '../../core/offer.js'
import type { NetworkSourceId, PricingConfig, SourceId } from '../config.js'
import { azureSpecsFromOffers, fetchAzureRetailOffers } from './azureRetail.js'
import { fetchDigitalOceanPages, parseDigitalOceanPrices } from './digitalocean.js'
import { fetchHetzner, parseHetznerPlans } from './hetzner.js'
import { fetchSkypilotCatalog, parseSkypilotCsv, type SkypilotCloud } from './skypilot.js'
import { loadThreefold } from './threefoldRefresh.js'
import type { LoadResult } from './types.js'
import { fetchVantageInstances, parseVantageInstances } from './vantage.js'
import { fetchVultrPlans, parseVultrPlanList } from './vultr.js'

export type SourceLoadContext = {
  config: PricingConfig
  signal: AbortSignal
  /** Stamp for the offers, ms since epoch. */
  fetchedAt: number
  /** The catalog's current offers of another source (e.g. Azure specs for azure-retail). */
  current: (id: SourceId) => readonly Offer[]
}

export type SourceLoader = (ctx: SourceLoadContext) => Promise<LoadResult>

const skypilot =
  (cloud: SkypilotCloud): SourceLoader =>
  async ({ config, signal, fetchedAt }) => {
    const c = config.sources[`skypilot-${cloud}`]
    const text = await fetchSkypilotCatalog({ cloud, url: c.url, signal, timeoutMs: c.timeoutMs })
    return parseSkypilotCsv(text, { cloud, fetchedAt, limits: config.sanity })
  }

/** The loader of every network source. */
export const sourceLoaders: Record<NetworkSourceId, SourceLoader> = {
  'skypilot-aws': skypilot('aws'),
  'skypilot-gcp': skypilot('gcp'),
  'skypilot-azure': skypilot('azure'),
  'skypilot-do': skypilot('do'),
  'skypilot-lambda': skypilot('lambda'),
  'skypilot-runpod': skypilot('runpod'),
  'skypilot-vast': skypilot('vast'),
  'azure-retail': async ({ config, signal, fetchedAt, current }) => {
    const c = config.sources['azure-retail']
    const specs = azureSpecsFromOffers(current('skypilot-azure'))
    return fetchAzureRetailOffers({ url: c.url, signal, timeoutMs: c.timeoutMs, maxPages: c.maxPages }, { fetchedAt, limits: config.sanity, specs })
  },
  'vantage-aws': async ({ config, signal, fetchedAt }) => {
    const c = config.sources['vantage-aws']
    return parseVantageInstances(await fetchVantageInstances({ url: c.url, signal, timeoutMs: c.timeoutMs }), { fetchedAt, limits: config.sanity })
  },
  'vultr-plans': async ({ config, signal, fetchedAt }) => {
    const c = config.sources['vultr-plans']
    return parseVultrPlanList(await fetchVultrPlans({ url: c.url, signal, timeoutMs: c.timeoutMs }), { fetchedAt, limits: config.sanity })
  },
  hetzner: async ({ config, signal, fetchedAt }) => {
    const c = config.sources.hetzner
    const { feed, pages } = await fetchHetzner({ url: c.url, signal, timeoutMs: c.timeoutMs, pageUrls: c.pageUrls })
    return parseHetznerPlans(pages, feed, { fetchedAt, limits: config.sanity, eurUsd: config.eurUsd, ipv4ProductKey: c.ipv4ProductKey })
  },
  digitalocean: async ({ config, signal, fetchedAt }) => {
    const c = config.sources.digitalocean
    const pages = await fetchDigitalOceanPages({ url: c.url, signal, timeoutMs: c.timeoutMs, pageUrls: c.pageUrls })
    return parseDigitalOceanPrices(pages, { fetchedAt, limits: config.sanity, regions: c.regions, gpuRegions: c.gpuRegions })
  },
  threefold: loadThreefold,
}
