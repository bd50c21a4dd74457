/**
 * PricingConfig: every parameter of the price catalog, with defaults in one place (`defaultPricingConfig`).
 * The lead maps the TOML `[pricing]` section into this type. Money values are decimal strings (USD unless named).
 */
import type { ProviderId } from '../core/offer.js'

/** Every price source the catalog knows. `own-inventory` needs no network. */
export const SourceIds = [
  'skypilot-aws',
  'skypilot-gcp',
  'skypilot-azure',
  'skypilot-do',
  'skypilot-lambda',
  'skypilot-runpod',
  'skypilot-vast',
  'azure-retail',
  'vantage-aws',
  'vultr-plans',
  'hetzner',
  'digitalocean',
  'threefold',
] as const
export type NetworkSourceId = (typeof SourceIds)[number]
export type SourceId = NetworkSourceId | 'own-inventory'

export type SourceConfig = {
  enabled: boolean
  /** Where the data is fetched from; defaults to the real public URL. */
  url: string
  /** node-cron expression (5 or 6 fields) for scheduled refreshes. */
  refresh: string
  /** Timeout of one fetch, ms. */
  timeoutMs: number
}

export type HetznerSourceConfig = SourceConfig & {
  /** Hetzner cloud plan pages (HTML with specs and product keys); `url` is the price feed JSON. */
  pageUrls: string[]
  /** Product key of the primary IPv4 address, billed separately (split out of '+'-joined keys). */
  ipv4ProductKey: string
}

export type DigitalOceanSourceConfig = SourceConfig & {
  /** Further pricing pages (GPU droplets); `url` is the droplets page. HTML with __NEXT_DATA__, or its JSON. */
  pageUrls: string[]
  /** Regions of plans whose page lists none (a droplet costs the same in every region). */
  regions: string[]
  /** Regions of GPU plans whose page lists none. */
  gpuRegions: string[]
}

export type AzureRetailSourceConfig = SourceConfig & {
  /** Upper bound on followed NextPageLink pages per refresh. */
  maxPages: number
}

export type ThreefoldSourceConfig = SourceConfig & {
  /** Only nodes with at least this much free memory, GiB (`free_mru` filter of the grid proxy). */
  minFreeMemoryGiB: number
  /** Grid proxy page size and page cap. */
  pageSize: number
  maxPages: number
}

/** A machine the operator owns (from the TOML inventory); priced at its configured hourly cost. */
export type OwnMachine = {
  name: string
  region: string
  vcpu: number
  memoryGiB: number
  storageGiB: number
  gpu?: { count: number; model?: string }
  /** USD per hour, decimal string. */
  hourlyUsd: string
}

/** TFChain pricing policy in chain units: USD × 1e7 per hour per unit (CU, SU, NU per GB, IPv4). */
export type ThreefoldPricingPolicy = {
  cu: number
  su: number
  nu: number
  ipu: number
  /** Percent off for renting a whole node (dedicated). */
  discountForDedicationNodes: number
}

/** Discount level of the twin paying for contracts, by TFT held (none 0 %, default 20 %, bronze 30 %, silver 40 %, gold 60 %). */
export type ThreefoldDiscountLevel = 'none' | 'default' | 'bronze' | 'silver' | 'gold'

export type TftUsdConfig = {
  /** TFChain's on-chain price (tftPriceModule), mUSD per TFT, when the operator's chain module supplies it. */
  tfchainPriceMusd?: number
  /**
   * WebSocket URL of a TFChain node (e.g. wss://tfchain.grid.tf/ws). When set, the "tfchain" sample is read from the
   * chain's tftPriceModule; `tfchainPriceMusd` then only stands in (as "tfchain-config") when that read fails.
   */
  tfchainUrl?: string
  /** polkadot.js type definitions for a runtime whose metadata has no type info (v12 and older, e.g. spec 61). */
  tfchainTypes?: Record<string, unknown>
  /** Further fixed rates (USD per TFT, decimal strings) to combine with the fetched ones. */
  extraUsd: string[]
  /** Stellar Horizon strict-receive paths endpoint (USDC → TFT). */
  stellarUrl: string
  stellarEnabled: boolean
  timeoutMs: number
  /** Sources further than this fraction from the median are discarded. Default 0.2. */
  maxDeviation: number
  /** At least this many agreeing sources are needed. Default 2. */
  minSources: number
  /** Safety buffer added when converting USD to TFT, fraction (0.1 = +10 %). */
  buffer: number
}

export type SanityLimits = {
  /** Prices above this are absurd for our purposes (TPU pods, data errors), USD per hour. */
  maxHourlyUsd: string
  /** Known placeholder prices some catalogs use instead of "unknown". */
  placeholderUsd: string[]
  maxVcpu: number
  maxMemoryGiB: number
  maxGpuCount: number
  /** A refresh returning fewer than this fraction of the previous offers is rejected. Default 0.5. */
  minKeepFraction: number
}

export type PricingConfig = {
  /** Directory of the disk cache: one `<source>.json` per source (see catalog.ts). */
  cacheDir: string
  sources: {
    'skypilot-aws': SourceConfig
    'skypilot-gcp': SourceConfig
    'skypilot-azure': SourceConfig
    'skypilot-do': SourceConfig
    'skypilot-lambda': SourceConfig
    'skypilot-runpod': SourceConfig
    'skypilot-vast': SourceConfig
    'azure-retail': AzureRetailSourceConfig
    'vantage-aws': SourceConfig
    'vultr-plans': SourceConfig
    hetzner: HetznerSourceConfig
    digitalocean: DigitalOceanSourceConfig
    threefold: ThreefoldSourceConfig
  }
  /** EUR → USD rate (USD per EUR), decimal string. */
  eurUsd: string
  tftUsd: TftUsdConfig
  threefold: {
    /** Prices offers when no TFChain node is configured, or when reading its policy fails. */
    policy: ThreefoldPricingPolicy
    discount: ThreefoldDiscountLevel
    /** Pricing policy read from TFChain (`tfgridModule.pricingPolicies`) when `tftUsd.tfchainUrl` is set. Default 1. */
    pricingPolicyId: number
  }
  /** Block storage list prices, USD per GiB-month, applied to offers whose source does not price storage. */
  storageUsdPerGiBMonth: Partial<Record<ProviderId, string>>
  /** Public IPv4 list prices, USD per hour, for providers that bill an address separately. */
  ipv4HourlyUsd: Partial<Record<ProviderId, string>>
  sanity: SanityLimits
  /** The operator's own machines. */
  own: OwnMachine[]
}

/** DigitalOcean regions droplets are sold in (the `digitalocean` source's default `regions`). */
export const DO_DROPLET_REGIONS = ['nyc1', 'nyc2', 'nyc3', 'sfo2', 'sfo3', 'ams3', 'sgp1', 'lon1', 'fra1', 'tor1', 'blr1', 'syd1', 'atl1'] as const

/** DigitalOcean regions GPU droplets are sold in (default `gpuRegions`). */
export const DO_GPU_REGIONS = ['nyc2', 'tor1', 'atl1'] as const

const SKYPILOT = 'https://raw.githubusercontent.com/skypilot-org/skypilot-catalog/master/catalogs'
const daily = (minute: number) => `${minute} 3 * * *`
const src = (url: string, refresh: string, enabled = true, timeoutMs = 60_000): SourceConfig => ({ enabled, url, refresh, timeoutMs })

/** Defaults for every source and knob; `cacheDir` is where the catalog keeps its per-source files. */
export function defaultPricingConfig(cacheDir: string): PricingConfig {
  return {
    cacheDir,
    sources: {
      'skypilot-aws': src(`${SKYPILOT}/v8/aws/vms.csv`, daily(5)),
      'skypilot-gcp': src(`${SKYPILOT}/v8/gcp/vms.csv`, daily(10)),
      'skypilot-azure': src(`${SKYPILOT}/v6/azure/vms.csv`, daily(15)),
      'skypilot-do': src(`${SKYPILOT}/v6/do/vms.csv`, daily(20)),
      'skypilot-lambda': src(`${SKYPILOT}/v8/lambda/vms.csv`, daily(25)),
      'skypilot-runpod': src(`${SKYPILOT}/v8/runpod/vms.csv`, daily(30)),
      // a marketplace whose offers churn by the minute; opt-in
      'skypilot-vast': src(`${SKYPILOT}/v8/vast/vms.csv`, daily(35), false),
      'azure-retail': {
        ...src(
          "https://prices.azure.com/api/retail/prices?api-version=2023-01-01-preview&$filter=serviceName eq 'Virtual Machines' and priceType eq 'Consumption'",
          '40 4 * * 0',
          false,
        ),
        maxPages: 2000,
      },
      // instances.json is ~100 MB; opt-in (SkyPilot's AWS catalog covers the same offers)
      'vantage-aws': src('https://instances.vantage.sh/instances.json', '45 4 * * *', false, 180_000),
      'vultr-plans': src('https://api.vultr.com/v2/plans?per_page=500', '50 * * * *', true, 30_000),
      hetzner: {
        ...src('https://www.hetzner.com/_resources/app/data/app/live_data_prices.json', '55 */6 * * *', true, 30_000),
        pageUrls: [
          'https://www.hetzner.com/cloud/cost-optimized/',
          'https://www.hetzner.com/cloud/regular-performance/',
          'https://www.hetzner.com/cloud/general-purpose/',
        ],
        ipv4ProductKey: 'CLOUD_21',
      },
      // SkyPilot's DO catalog (skypilot-do) is the default DigitalOcean source; the pricing pages are opt-in
      digitalocean: {
        ...src('https://www.digitalocean.com/pricing/droplets', '0 4 * * *', false, 30_000),
        pageUrls: ['https://www.digitalocean.com/pricing/gpu-droplets'],
        regions: [...DO_DROPLET_REGIONS],
        gpuRegions: [...DO_GPU_REGIONS],
      },
      threefold: {
        ...src('https://gridproxy.grid.tf', '*/15 * * * *', true, 30_000),
        minFreeMemoryGiB: 2,
        pageSize: 500,
        maxPages: 40,
      },
    },
    eurUsd: '1.08',
    tftUsd: {
      extraUsd: [],
      stellarUrl: 'https://horizon.stellar.org',
      stellarEnabled: true,
      timeoutMs: 15_000,
      maxDeviation: 0.2,
      minSources: 2,
      buffer: 0.1,
    },
    threefold: {
      // tfchain mainnet pricing policy 1 (units of USD × 1e7 per hour): CU 10 mUSD/h, SU 5 mUSD/h
      policy: { cu: 100_000, su: 50_000, nu: 15_000, ipu: 40_000, discountForDedicationNodes: 50 },
      discount: 'none',
      pricingPolicyId: 1,
    },
    storageUsdPerGiBMonth: {
      aws: '0.08', // gp3, us-east-1
      gcp: '0.10', // pd-balanced
      azure: '0.075', // Standard SSD, pro-rated per GiB
      digitalocean: '0.10', // volumes
      vultr: '0.10', // block storage NVMe
      lambda: '0.20', // persistent filesystem
      runpod: '0.10', // network volume
    },
    ipv4HourlyUsd: {
      aws: '0.005', // public IPv4 since 2024-02
      gcp: '0.004',
      azure: '0.005', // standard static public IP
    },
    sanity: {
      maxHourlyUsd: '1000',
      placeholderUsd: ['700', '99999', '999999'],
      maxVcpu: 4096,
      maxMemoryGiB: 65_536,
      maxGpuCount: 64,
      minKeepFraction: 0.5,
    },
    own: [],
  }
}
