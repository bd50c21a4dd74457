/**
 * The tfchain price source against a real TFChain runtime (spec 61) run offline by chopsticks: the price is put in
 * storage with dev_setStorage (or by a signed setPrices, the oracle's own extrinsic) and read back through @polkadot/api.
 */
import { createServer, type Server, type Socket } from 'node:net'
import { ApiPromise, WsProvider } from '@polkadot/api'
import type { ApiOptions } from '@polkadot/api/types'
import { Keyring } from '@polkadot/keyring'
import { u8aToHex } from '@polkadot/util'
import { cryptoWaitReady, xxhashAsHex } from '@polkadot/util-crypto'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { AbortedError, TimeoutError } from '../../core/errors.js'
import { defaultPricingConfig } from '../../pricing/config.js'
import { PriceSourceFetchError, PriceSourceParseError, TftRateError } from '../../pricing/errors.js'
import { fetchTfchain, fetchTfchainPricingPolicy } from '../../pricing/sources/tfchain.js'
import { resolveTftUsd } from '../../pricing/sources/threefold.js'
import { startTfchain, tfchainSpec61Types, type Chopsticks } from './chopsticks.js'

const key = (pallet: string, item: string) => xxhashAsHex(pallet, 128) + xxhashAsHex(item, 128).slice(2)
const TFT_PRICE = key('TFTPriceModule', 'TftPrice')
const AVERAGE_TFT_PRICE = key('TFTPriceModule', 'AverageTftPrice')

let chain: Chopsticks
const setStorage = (entries: Array<[string, string | null]>) => chain.rpc('dev_setStorage', [entries])
const read = (o: { pricingPolicyId?: number; timeoutMs?: number; signal?: AbortSignal } = {}) =>
  fetchTfchain({ url: chain.wsUrl, types: tfchainSpec61Types, timeoutMs: 20_000, ...o })
const tftUsd = (o: Partial<ReturnType<typeof defaultPricingConfig>['tftUsd']> = {}) => ({
  ...defaultPricingConfig('/tmp').tftUsd,
  stellarEnabled: false,
  tfchainUrl: chain.wsUrl,
  tfchainTypes: tfchainSpec61Types,
  timeoutMs: 20_000,
  ...o,
})

beforeAll(async () => {
  chain = await startTfchain()
})

afterAll(async () => {
  await chain?.stop()
})

describe('fetchTfchain (chopsticks, spec 61)', () => {
  test('default: reads exactly the U16F16 price set in storage, and pricing policy 1', async () => {
    // 2130 / 65536 USD per TFT, little-endian U16F16
    await setStorage([[TFT_PRICE, '0x52080000']])
    expect(await chain.rpc('state_getStorage', [TFT_PRICE])).toBe('0x52080000')
    const r = await read({ pricingPolicyId: 1 })
    expect(r.usdPerTft.toString()).toBe('0.032501220703125')
    expect(r.specVersion).toBe(61)
    // genesis leaves averageTftPrice at 0: not reported
    expect(r.averageUsdPerTft).toBeUndefined()
    // threefold_default_pricing_policy of the qanet genesis
    expect(r.policy).toEqual({ cu: 600000, su: 300000, nu: 2000, ipu: 100000, discountForDedicationNodes: 50 })
  })

  test('behavior: a set averageTftPrice is read too', async () => {
    await setStorage([
      [TFT_PRICE, '0x00100000'],
      [AVERAGE_TFT_PRICE, '0x00080000'],
    ])
    const r = await read()
    expect(r.usdPerTft.toString()).toBe('0.0625')
    expect(r.averageUsdPerTft?.toString()).toBe('0.03125')
    expect(r.policy).toBeUndefined()
  })

  test('behavior: resolveTftUsd uses the chain as the "tfchain" sample, not the configured value', async () => {
    await setStorage([[TFT_PRICE, '0x52080000']])
    const r = await resolveTftUsd(tftUsd({ tfchainPriceMusd: 31, extraUsd: ['0.0325'] }))
    expect(r.used.map((u) => [u.source, u.usdPerTft.toString()])).toEqual([
      ['tfchain', '0.032501220703125'],
      ['config[0]', '0.0325'],
    ])
    expect(r.usdPerTft.toString()).toBe('0.0325006103515625')
  })

  test('behavior: a price stored by a signed setPrices (the oracle\'s own extrinsic) is read back', async () => {
    await cryptoWaitReady()
    const alice = new Keyring({ type: 'sr25519' }).addFromUri('//Alice')
    // only the allowed origin may set prices; make it Alice
    await setStorage([[key('TFTPriceModule', 'AllowedOrigin'), u8aToHex(alice.publicKey)]])
    const api = await ApiPromise.create({ provider: new WsProvider(chain.wsUrl), types: tfchainSpec61Types as ApiOptions['types'], noInitWarn: true })
    try {
      const header = await api.rpc.chain.getHeader()
      const nonce = await api.rpc.system.accountNextIndex(alice.address)
      // chopsticks cannot validate transactions for this runtime (v2 validate_transaction); sign offline, put in a block
      const setPrices = api.tx.tftPriceModule!.setPrices!
      const tx = await setPrices('0x9a190000', header.number.toNumber()).signAsync(alice, { nonce, era: 0 })
      await chain.rpc('dev_newBlock', [{ transactions: [tx.toHex()] }])
    } finally {
      await api.disconnect()
    }
    // 0x0000199a = 6554 → 6554 / 65536 ≈ 0.1 USD
    const r = await read()
    expect(r.usdPerTft.toString()).toBe('0.100006103515625')
    // the runtime recomputed the average from its ring buffer, which holds only this price (dev_setStorage bypasses it)
    expect(r.averageUsdPerTft?.toString()).toBe('0.100006103515625')
  })

  test('error: a zero price is rejected, not used as a sample', async () => {
    await setStorage([[TFT_PRICE, '0x00000000']])
    const err = await read().catch((e) => e)
    expect(err).toBeInstanceOf(PriceSourceParseError)
    expect({ code: err.code, retryable: err.retryable }).toEqual({ code: 'PRICE_SOURCE_PARSE', retryable: false })
    expect(err.shortMessage).toContain('tftPriceModule.tftPrice is 0')
    // the configured value stands in, under its own name
    const fallback = await resolveTftUsd(tftUsd({ tfchainPriceMusd: 33, extraUsd: ['0.033'] }))
    expect(fallback.used.map((u) => u.source)).toEqual(['tfchain-config', 'config[0]'])
    // without one, the rate is unavailable and says why
    const none = await resolveTftUsd(tftUsd({ extraUsd: ['0.033'] })).catch((e) => e)
    expect(none).toBeInstanceOf(TftRateError)
    expect(none.code).toBe('TFT_RATE_UNAVAILABLE')
    expect(none.details.join('\n')).toContain('tftPrice is 0')
  })

  test('error: garbage prices are rejected (absurd rate, wrong size)', async () => {
    await setStorage([[TFT_PRICE, '0xffffffff']])
    expect(await read().catch((e) => e)).toBeInstanceOf(PriceSourceParseError)
    await setStorage([[TFT_PRICE, '0x0102']])
    const err = await read().catch((e) => e)
    expect(err).toBeInstanceOf(PriceSourceParseError)
    expect(err.shortMessage).toContain('2 bytes')
    await setStorage([[TFT_PRICE, null]])
    expect((await read().catch((e) => e)).shortMessage).toContain('not set on chain')
  })

  test('behavior: fetchTfchainPricingPolicy reads the policy even while no TFT price is set', async () => {
    await setStorage([[TFT_PRICE, '0x00000000']])
    expect((await read({ pricingPolicyId: 1 }).catch((e) => e)).shortMessage).toContain('tftPrice is 0')
    const r = await fetchTfchainPricingPolicy({ url: chain.wsUrl, types: tfchainSpec61Types, timeoutMs: 20_000, pricingPolicyId: 1 })
    expect(r).toEqual({ policy: { cu: 600000, su: 300000, nu: 2000, ipu: 100000, discountForDedicationNodes: 50 }, specVersion: 61 })
    const err = await fetchTfchainPricingPolicy({ url: chain.wsUrl, types: tfchainSpec61Types, timeoutMs: 20_000, pricingPolicyId: 7 }).catch((e) => e)
    expect(err).toBeInstanceOf(PriceSourceParseError)
    expect(err.shortMessage).toContain('pricing policy 7 is not on chain')
  })

  test('error: an unknown pricing policy is rejected', async () => {
    await setStorage([[TFT_PRICE, '0x52080000']])
    const err = await read({ pricingPolicyId: 7 }).catch((e) => e)
    expect(err).toBeInstanceOf(PriceSourceParseError)
    expect(err.shortMessage).toContain('pricing policy 7 is not on chain')
  })

  test('args: without the types file the price still reads; the policy cannot decode, not retryable', async () => {
    await setStorage([[TFT_PRICE, '0x52080000']])
    const plain = { url: chain.wsUrl, timeoutMs: 20_000 }
    expect((await fetchTfchain(plain)).usdPerTft.toString()).toBe('0.032501220703125')
    const err = await fetchTfchain({ ...plain, pricingPolicyId: 1 }).catch((e) => e)
    expect(err).toBeInstanceOf(PriceSourceParseError)
    expect(err.retryable).toBe(false)
    expect(err.shortMessage).toContain('pricing policy 1 does not decode')
  })

  test('behavior: an aborted signal stops the read', async () => {
    const c = new AbortController()
    c.abort(new Error('shutting down'))
    expect(await read({ signal: c.signal }).catch((e) => e)).toBeInstanceOf(AbortedError)
  })
})

describe('fetchTfchain: node unreachable', () => {
  let silent: Server
  const sockets: Socket[] = []
  beforeAll(async () => {
    // accepts TCP but never answers the WebSocket handshake
    silent = createServer((s) => void sockets.push(s))
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
  })
  afterAll(async () => {
    for (const s of sockets) s.destroy()
    await new Promise((resolve) => silent.close(resolve))
  })

  test('error: connection refused is a retryable fetch error', async () => {
    const closed = createServer()
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve))
    const port = (closed.address() as { port: number }).port
    await new Promise((resolve) => closed.close(resolve))
    const err = await fetchTfchain({ url: `ws://127.0.0.1:${port}`, timeoutMs: 20_000 }).catch((e) => e)
    expect(err).toBeInstanceOf(PriceSourceFetchError)
    expect({ code: err.code, retryable: err.retryable }).toEqual({ code: 'PRICE_SOURCE_FETCH', retryable: true })
    expect(err.shortMessage).toContain('ECONNREFUSED')
  })

  test('error: a node that never answers times out, retryable', async () => {
    const port = (silent.address() as { port: number }).port
    const err = await fetchTfchain({ url: `ws://127.0.0.1:${port}`, timeoutMs: 1_000 }).catch((e) => e)
    expect(err).toBeInstanceOf(PriceSourceFetchError)
    expect(err.retryable).toBe(true)
    expect(err.cause).toBeInstanceOf(TimeoutError)
  })

  test('behavior: resolveTftUsd falls back to the configured value when the node is down', async () => {
    const port = (silent.address() as { port: number }).port
    const c = { ...defaultPricingConfig('/tmp').tftUsd, stellarEnabled: false, tfchainUrl: `ws://127.0.0.1:${port}`, timeoutMs: 1_000, tfchainPriceMusd: 33, extraUsd: ['0.033'] }
    const r = await resolveTftUsd(c)
    expect(r.used.map((u) => u.source)).toEqual(['tfchain-config', 'config[0]'])
    expect(r.usdPerTft.toString()).toBe('0.033')
  })
})
