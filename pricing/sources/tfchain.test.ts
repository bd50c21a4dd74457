import { readFileSync } from 'node:fs'
import { describe, expect, test } from 'vitest'
import { PriceSourceFetchError, PriceSourceParseError } from '../errors.js'
import { fetchTfchain, fetchTfchainPricingPolicy, pricingPolicyFromStorage, tftUsdFromStorage } from './tfchain.js'

const bytes = (...b: number[]) => Uint8Array.from(b)

describe('tftUsdFromStorage', () => {
  test('default: U16F16 (spec 61) is little-endian bits / 65536 USD per TFT', () => {
    // 0x00000852 = 2130 → 2130 / 65536
    expect(tftUsdFromStorage({ type: 'U16F16', bytes: bytes(0x52, 0x08, 0, 0) }).toString()).toBe('0.032501220703125')
    // 1.5 USD: integer part in the high half
    expect(tftUsdFromStorage({ type: 'U16F16', bytes: bytes(0, 0x80, 1, 0) }).toString()).toBe('1.5')
  })

  test('args: the resolved forms of U16F16 read the same', () => {
    for (const type of ['[u8;4]', '[u8; 4]', '{"bits":"u32"}'])
      expect(tftUsdFromStorage({ type, bytes: bytes(0x52, 0x08, 0, 0) }).toString()).toBe('0.032501220703125')
  })

  test('behavior: u32 (later runtimes) is mUSD per TFT', () => {
    expect(tftUsdFromStorage({ type: 'u32', bytes: bytes(33, 0, 0, 0) }).toString()).toBe('0.033')
    expect(tftUsdFromStorage({ type: 'u32', bytes: bytes(0x2c, 0x01, 0, 0) }).toString()).toBe('0.3')
    expect(tftUsdFromStorage({ type: 'u64', bytes: bytes(7, 0, 0, 0, 0, 0, 0, 0) }).toString()).toBe('0.007')
  })

  test('error: zero or unset price is rejected', () => {
    const zero = () => tftUsdFromStorage({ type: 'U16F16', bytes: bytes(0, 0, 0, 0) })
    expect(zero).toThrow(PriceSourceParseError)
    expect(zero).toThrow(/tftPriceModule.tftPrice is 0/)
    expect(() => tftUsdFromStorage({ type: 'u32', bytes: new Uint8Array() })).toThrow(/not set on chain/)
  })

  test('error: garbage is rejected (wrong size, unknown type, absurd rate)', () => {
    expect(() => tftUsdFromStorage({ type: 'U16F16', bytes: bytes(1, 2) })).toThrow(/2 bytes, U16F16 takes 4/)
    expect(() => tftUsdFromStorage({ type: 'u32', bytes: bytes(1, 0, 0, 0, 0, 0, 0, 0) })).toThrow(/8 bytes/)
    expect(() => tftUsdFromStorage({ type: 'Balance', bytes: bytes(1, 0, 0, 0) })).toThrow(/has type Balance/)
    expect(() => tftUsdFromStorage({ type: 'i32', bytes: bytes(1, 0, 0, 0) })).toThrow(PriceSourceParseError)
    // 0xffffffff as U16F16 ≈ 65536 USD per TFT
    expect(() => tftUsdFromStorage({ type: 'U16F16', bytes: bytes(0xff, 0xff, 0xff, 0xff) })).toThrow(/above the 10 bound/)
    const err = (() => {
      try {
        tftUsdFromStorage({ type: 'u32', bytes: bytes(0, 0, 0, 0) })
      } catch (e) {
        return e as PriceSourceParseError
      }
    })()
    expect(err?.retryable).toBe(false)
  })

  test('args: maxUsdPerTft and item', () => {
    expect(() => tftUsdFromStorage({ type: 'u32', bytes: bytes(0xe8, 0x03, 0, 0) }, { maxUsdPerTft: '0.5' })).toThrow(/1 USD per TFT, above the 0.5 bound/)
    expect(tftUsdFromStorage({ type: 'u32', bytes: bytes(0xe8, 0x03, 0, 0) }, { maxUsdPerTft: 1 }).toString()).toBe('1')
    expect(() => tftUsdFromStorage({ type: 'u32', bytes: bytes(0, 0, 0, 0) }, { item: 'tftPriceModule.averageTftPrice' })).toThrow(/averageTftPrice is 0/)
  })
})

describe('pricingPolicyFromStorage', () => {
  // shape of `pricingPolicies(1).toJSON()` on spec 61 with the types file (snake_case keys, `dedicated`)
  const spec61 = {
    version: 2,
    id: 1,
    name: '0x7468726565666f6c645f64656661756c745f70726963696e675f706f6c696379',
    su: { value: 300000, unit: 'Gigabytes' },
    cu: { value: 600000, unit: 'Gigabytes' },
    nu: { value: 2000, unit: 'Gigabytes' },
    ipu: { value: 100000, unit: 'Gigabytes' },
    unique_name: { value: 20000, unit: 'Gigabytes' },
    domain_name: { value: 40000, unit: 'Gigabytes' },
    foundation_account: '5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY',
    certified_sales_account: '5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY',
    discount_for_dedicated_nodes: 50,
  }

  test('default: spec 61 policy', () => {
    expect(pricingPolicyFromStorage(spec61, 1)).toEqual({ cu: 600000, su: 300000, nu: 2000, ipu: 100000, discountForDedicationNodes: 50 })
  })

  test('args: camelCase keys and `dedication` (metadata v14 runtimes)', () => {
    const v14 = {
      id: 1,
      cu: { value: 100000, unit: 'Gigabytes' },
      su: { value: 50000, unit: 'Gigabytes' },
      nu: { value: 15000, unit: 'Gigabytes' },
      ipu: { value: 40000, unit: 'Gigabytes' },
      discountForDedicationNodes: 50,
    }
    expect(pricingPolicyFromStorage(v14, 1)).toEqual({ cu: 100000, su: 50000, nu: 15000, ipu: 40000, discountForDedicationNodes: 50 })
  })

  test('error: an id not on chain reads as a zeroed default and is rejected', () => {
    const unset = { ...spec61, id: 0, version: 0, su: { value: 0, unit: 'Gigabytes' }, cu: { value: 0, unit: 'Gigabytes' } }
    expect(() => pricingPolicyFromStorage(unset, 7)).toThrow(/pricing policy 7 is not on chain/)
    expect(() => pricingPolicyFromStorage({ ...unset, id: 7 }, 7)).toThrow(/zero CU or SU/)
  })

  test('error: not an object, missing or negative values', () => {
    expect(() => pricingPolicyFromStorage(null, 1)).toThrow(PriceSourceParseError)
    expect(() => pricingPolicyFromStorage([1], 1)).toThrow(PriceSourceParseError)
    const { nu: _nu, ...noNu } = spec61
    expect(() => pricingPolicyFromStorage(noNu, 1)).toThrow(/pricing policy nu/)
    expect(() => pricingPolicyFromStorage({ ...spec61, cu: { value: -1 } }, 1)).toThrow(/pricing policy cu/)
  })
})

describe('fetchTfchain', () => {
  test('error: a URL that is not ws:// or wss:// fails at once, not retryable (the policy reader too)', async () => {
    const p = await fetchTfchainPricingPolicy({ url: 'http://127.0.0.1:1', pricingPolicyId: 1, timeoutMs: 1_000 }).catch((e) => e)
    expect(p).toBeInstanceOf(PriceSourceFetchError)
    expect(p.retryable).toBe(false)
    const err = await fetchTfchain({ url: 'https://tfchain.grid.tf', timeoutMs: 1_000 }).catch((e) => e)
    expect(err).toBeInstanceOf(PriceSourceFetchError)
    expect(err.retryable).toBe(false)
    expect(err.shortMessage).toContain('not a ws:// or wss:// URL')
  })
})

describe('loading', () => {
  test('behavior: @polkadot/api is imported lazily (no static import in the pricing sources)', () => {
    for (const file of ['./tfchain.ts', './threefold.ts', './threefoldRefresh.ts', './index.ts']) {
      const text = readFileSync(new URL(file, import.meta.url), 'utf8')
      expect(text, file).not.toMatch(/^import[^\n]*from '@polkadot\//m)
      expect(text, file).not.toMatch(/^import '@polkadot\//m)
    }
    for (const file of ['./threefold.ts', './threefoldRefresh.ts']) expect(readFileSync(new URL(file, import.meta.url), 'utf8')).not.toMatch(/^import[^\n]*from '\.\/tfchain\.js'/m)
  })
})
