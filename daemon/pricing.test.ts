import { describe, expect, test } from 'vitest'
import { parseConfig, ConfigError } from './config.js'
import { pricingConfigOf } from './pricing.js'

const doc = (sources: string[]) => ({
  operator: { id: 'op' },
  chain: { rpc_url: 'http://127.0.0.1:8545', chain_id: 1, private_key: 'env:K', registry: `0x${'11'.repeat(20)}`, escrow: `0x${'22'.repeat(20)}` },
  pricing: { sources, cache_dir: '/tmp/bpo-pricing-cache', eur_usd: '1.10' },
})

describe('pricingConfigOf', () => {
  test('default: only the named sources are enabled; rates carried over', () => {
    const pc = pricingConfigOf(parseConfig(doc(['skypilot-aws', 'vultr-plans']), { env: { K: '0x' + '01'.repeat(32) } }))
    expect(pc.sources['skypilot-aws'].enabled).toBe(true)
    expect(pc.sources['vultr-plans'].enabled).toBe(true)
    expect(pc.sources['skypilot-gcp'].enabled).toBe(false)
    expect(pc.eurUsd).toBe('1.1')
    expect(pc.cacheDir).toBe('/tmp/bpo-pricing-cache')
    expect(pc.tftUsd.tfchainUrl).toBeUndefined()
    expect(pc.threefold.pricingPolicyId).toBe(1)
  })
  test('args: the opt-in DigitalOcean pricing pages source', () => {
    const pc = pricingConfigOf(parseConfig(doc(['skypilot-do', 'digitalocean']), { env: { K: '0x' + '01'.repeat(32) } }))
    expect(pc.sources.digitalocean.enabled).toBe(true)
    expect(pc.sources['skypilot-do'].enabled).toBe(true)
    expect(pricingConfigOf(parseConfig(doc(['skypilot-do']), { env: { K: '0x' + '01'.repeat(32) } })).sources.digitalocean.enabled).toBe(false)
  })
  test('args: a TFChain node and its types file', () => {
    const types = new URL('../../shared/fixtures/substrate/tfchain-qanet-spec61-types.json', import.meta.url).pathname
    const d = { ...doc([]), pricing: { sources: [], tfchain_url: 'ws://127.0.0.1:9944', tfchain_types: types, tfchain_pricing_policy: 2 } }
    const pc = pricingConfigOf(parseConfig(d, { env: { K: '0x' + '01'.repeat(32) } }))
    expect(pc.tftUsd.tfchainUrl).toBe('ws://127.0.0.1:9944')
    expect(pc.threefold.pricingPolicyId).toBe(2)
    const bad = { ...doc([]), pricing: { sources: [], tfchain_pricing_policy: 0 } }
    expect(() => parseConfig(bad, { env: { K: '0x' + '01'.repeat(32) } })).toThrow(ConfigError)
    expect(Object.keys(pc.tftUsd.tfchainTypes ?? {})).toContain('PricingPolicy')
  })
  test('error: unknown sources are reported with their path', () => {
    const c = parseConfig(doc(['skypilot-aws', 'nope']), { env: { K: '0x' + '01'.repeat(32) } })
    expect(() => pricingConfigOf(c)).toThrow(ConfigError)
    try {
      pricingConfigOf(c)
    } catch (err) {
      expect((err as ConfigError).problems[0]!.path).toBe('pricing.sources[1]')
    }
  })
})
