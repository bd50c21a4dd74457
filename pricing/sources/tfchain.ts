/**
 * TFChain: the TFT/USD price the chain itself bills with (`tftPriceModule.tftPrice`) and, optionally, a pricing policy
 * (`tfgridModule.pricingPolicies(id)`), read from a node over WebSocket with @polkadot/api. No key is needed.
 *
 * The price's encoding depends on the runtime: up to mid-2022 (spec 61 and its neighbours) `TftPrice` is a `U16F16`
 * fixed-point number (USD per TFT = u32 bits / 65536, SCALE little-endian); later runtimes store `u32` mUSD per TFT.
 * The metadata names the storage type, so the parser is told which one it has rather than guessing from 4 bytes.
 * @polkadot/api is loaded only when a fetch runs: the daemon does not pay for it unless a node URL is configured.
 */
import { AbortedError, BaseError } from '../../core/errors.js'
import { Usd, type Decimal } from '../../core/money.js'
import { withTimeout } from '../../core/retry.js'
import type { ThreefoldPricingPolicy } from '../config.js'
import { PriceSourceFetchError, PriceSourceParseError } from '../errors.js'
import { pricingPolicyFromChain } from './threefold.js'

const SOURCE = 'tfchain'

/** One storage value as the node holds it: the type the metadata declares and the raw SCALE bytes. */
export type TfchainStorageValue = {
  /** Declared type: `U16F16` / `[u8;4]` / `{"bits":"u32"}` (fixed point) or `u32`/`u64`/`u128` (mUSD). */
  type: string
  /** SCALE bytes; empty when the key is absent (a ValueQuery then reads as zero). */
  bytes: Uint8Array
}

export type TftUsdFromStorageOptions = {
  /** Storage item named in errors. Default `tftPriceModule.tftPrice`. */
  item?: string
  /** Rates above this many USD per TFT are rejected as garbage. Default 10. */
  maxUsdPerTft?: Decimal.Value
}

const FIXED_TYPES = new Set(['U16F16', '[u8;4]', '{"bits":"u32"}', 'FixedU32<U16>'])
const UINT_BYTES: Record<string, number> = { u16: 2, u32: 4, u64: 8, u128: 16 }

const le = (bytes: Uint8Array) => bytes.reduceRight((acc, b) => (acc << 8n) | BigInt(b), 0n)

/** USD per TFT from a raw `tftPrice`/`averageTftPrice` value; zero, unset, wrongly sized or absurd values throw. */
export function tftUsdFromStorage(v: TfchainStorageValue, o: TftUsdFromStorageOptions = {}): Decimal {
  const item = o.item ?? 'tftPriceModule.tftPrice'
  const type = v.type.replace(/\s+/g, '')
  const fixed = FIXED_TYPES.has(type)
  const width = fixed ? 4 : UINT_BYTES[type]
  if (width === undefined) throw new PriceSourceParseError(SOURCE, `${item} has type ${v.type}, expected U16F16 or an unsigned integer (mUSD)`)
  if (v.bytes.length === 0) throw new PriceSourceParseError(SOURCE, `${item} is not set on chain`)
  if (v.bytes.length !== width) throw new PriceSourceParseError(SOURCE, `${item} is ${v.bytes.length} bytes, ${type} takes ${width}`)
  const raw = le(v.bytes)
  if (raw === 0n) throw new PriceSourceParseError(SOURCE, `${item} is 0 (no price set on chain)`)
  const rate = new Usd(raw.toString()).div(fixed ? 65_536 : 1000)
  const max = new Usd(o.maxUsdPerTft ?? 10)
  if (rate.gt(max)) throw new PriceSourceParseError(SOURCE, `${item} is ${rate.toString()} USD per TFT, above the ${max.toString()} bound`)
  return rate
}

const camel = (k: string) => k.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase())

/**
 * A pricing policy from `pricingPolicies(id).toJSON()`: snake_case (types files) or camelCase (metadata v14) keys,
 * `discount_for_dedicated_nodes` (spec 61) or `discount_for_dedication_nodes` (later). An unset id reads as a zeroed
 * default struct on chain and is rejected.
 */
export function pricingPolicyFromStorage(json: unknown, id: number): ThreefoldPricingPolicy {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new PriceSourceParseError(SOURCE, `pricing policy ${id}: got ${JSON.stringify(json)}`)
  const flat: Record<string, unknown> = {}
  for (const [k, val] of Object.entries(json)) flat[camel(k)] = val
  if (flat.discountForDedicationNodes === undefined) flat.discountForDedicationNodes = flat.discountForDedicatedNodes
  if (flat.id !== undefined && flat.id !== id) throw new PriceSourceParseError(SOURCE, `pricing policy ${id} is not on chain (read id ${JSON.stringify(flat.id)})`)
  const policy = pricingPolicyFromChain(flat)
  if (policy.cu === 0 || policy.su === 0) throw new PriceSourceParseError(SOURCE, `pricing policy ${id} has a zero CU or SU price`)
  return policy
}

export type FetchTfchainParameters = {
  /** WebSocket URL of a TFChain node, e.g. wss://tfchain.grid.tf/ws. */
  url: string
  signal?: AbortSignal | undefined
  /** Whole read including connecting and loading metadata, ms. Default 15 000. */
  timeoutMs?: number | undefined
  /** polkadot.js type definitions, needed for runtimes whose metadata carries no type info (v12 and older). */
  types?: Record<string, unknown> | undefined
  /** Also read this pricing policy (1 is the default policy). */
  pricingPolicyId?: number | undefined
  maxUsdPerTft?: Decimal.Value | undefined
}

export type TfchainReading = {
  /** `tftPriceModule.tftPrice`, USD per TFT. */
  usdPerTft: Decimal
  /** `tftPriceModule.averageTftPrice` when the runtime has a usable one. */
  averageUsdPerTft?: Decimal
  policy?: ThreefoldPricingPolicy
  specVersion: number
}

type Api = import('@polkadot/api').ApiPromise
type ApiTypes = import('@polkadot/api/types').ApiOptions['types']
type Provider = import('@polkadot/api').WsProvider

async function readStorage(api: Api, provider: Provider, section: string, method: string): Promise<TfchainStorageValue> {
  const entry = api.query[section]?.[method]
  if (!entry) throw new PriceSourceParseError(SOURCE, `the node's runtime has no ${section}.${method}`)
  const meta = entry.creator.meta.type
  if (!meta.isPlain) throw new PriceSourceParseError(SOURCE, `${section}.${method} is not a plain storage value`)
  const type = api.registry.lookup.getTypeDef(meta.asPlain).type
  // raw bytes, so that the parser (not polkadot.js's registry) decides what they mean
  const hex = await provider.send<string | null>('state_getStorage', [entry.key()])
  return { type, bytes: hex ? Buffer.from(hex.replace(/^0x/, ''), 'hex') : new Uint8Array() }
}

async function readPolicy(api: Api, provider: Provider, id: number): Promise<ThreefoldPricingPolicy> {
  const entry = api.query.tfgridModule?.pricingPolicies
  if (!entry || !entry.creator.meta.type.isMap) throw new PriceSourceParseError(SOURCE, "the node's runtime has no tfgridModule.pricingPolicies map")
  const hex = await provider.send<string | null>('state_getStorage', [entry.key(id)])
  if (!hex) throw new PriceSourceParseError(SOURCE, `pricing policy ${id} is not on chain`)
  let json: unknown
  try {
    // decoding is local: a failure here is the data or the type definitions, never the connection
    json = api.registry.createType(api.registry.createLookupType(entry.creator.meta.type.asMap.value), hex).toJSON()
  } catch (err) {
    throw new PriceSourceParseError(SOURCE, `pricing policy ${id} does not decode (type definitions for this runtime missing?)`, err)
  }
  return pricingPolicyFromStorage(json, id)
}

type Race = <T>(x: Promise<T>) => Promise<T>

/** Connect, load the runtime's metadata, run `body`, disconnect; a socket error, a close or an abort ends `body`'s wait. */
async function session<T>(p: FetchTfchainParameters, signal: AbortSignal, body: (api: Api, provider: Provider, race: Race) => Promise<T>): Promise<T> {
  const { ApiPromise, WsProvider } = await import('@polkadot/api')
  // no auto-reconnect: an unreachable node must fail this read, not retry forever in the background
  const provider = new WsProvider(p.url, false, {}, p.timeoutMs ?? 15_000)
  let api: Api | undefined
  const unsubs: Array<() => void> = []
  const failed = new Promise<never>((_, reject) => {
    unsubs.push(provider.on('error', (e: unknown) => reject(new PriceSourceFetchError(SOURCE, p.url, `WebSocket error: ${errorText(e)}`, { retryable: true }))))
    unsubs.push(provider.on('disconnected', () => reject(new PriceSourceFetchError(SOURCE, p.url, 'the node closed the connection', { retryable: true }))))
    const onAbort = () => reject(signal.reason)
    signal.addEventListener('abort', onAbort, { once: true })
    unsubs.push(() => signal.removeEventListener('abort', onAbort))
  })
  failed.catch(() => undefined)
  const race: Race = (x) => Promise.race([x, failed])
  try {
    await provider.connect()
    await race(provider.isReady)
    api = await race(ApiPromise.create({ provider, types: p.types as ApiTypes, noInitWarn: true }))
    return await body(api, provider, race)
  } finally {
    for (const u of unsubs) u()
    await (api ?? provider).disconnect().catch(() => undefined)
  }
}

async function readPrices(p: FetchTfchainParameters, a: Api, provider: Provider, race: Race): Promise<TfchainReading> {
  const price = await race(readStorage(a, provider, 'tftPriceModule', 'tftPrice'))
  const reading: TfchainReading = {
    usdPerTft: tftUsdFromStorage(price, { maxUsdPerTft: p.maxUsdPerTft }),
    specVersion: a.runtimeVersion.specVersion.toNumber(),
  }
  if (a.query.tftPriceModule?.averageTftPrice) {
    const avg = await race(readStorage(a, provider, 'tftPriceModule', 'averageTftPrice'))
    try {
      reading.averageUsdPerTft = tftUsdFromStorage(avg, { item: 'tftPriceModule.averageTftPrice', maxUsdPerTft: p.maxUsdPerTft })
    } catch (err) {
      // the average is informative only; an unset one must not hide a good current price
      if (!(err instanceof PriceSourceParseError)) throw err
    }
  }
  if (p.pricingPolicyId !== undefined) reading.policy = await race(readPolicy(a, provider, p.pricingPolicyId))
  return reading
}

const errorText = (e: unknown) => {
  const m = (e as { message?: unknown })?.message
  return typeof m === 'string' && m ? m : String((e as { type?: unknown })?.type ?? e)
}

/** Validate the URL, run one session under the timeout, and classify what went wrong. */
async function run<T>(p: FetchTfchainParameters, body: (api: Api, provider: Provider, race: Race) => Promise<T>): Promise<T> {
  const timeoutMs = p.timeoutMs ?? 15_000
  if (!/^wss?:\/\//i.test(p.url)) throw new PriceSourceFetchError(SOURCE, p.url, 'not a ws:// or wss:// URL', { retryable: false })
  try {
    return await withTimeout(`read ${SOURCE}`, timeoutMs, (signal) => session(p, signal, body), p.signal)
  } catch (err) {
    if (err instanceof PriceSourceFetchError || err instanceof PriceSourceParseError || err instanceof AbortedError) throw err
    if (err instanceof BaseError) throw new PriceSourceFetchError(SOURCE, p.url, err.shortMessage, { cause: err, retryable: err.retryable })
    throw new PriceSourceFetchError(SOURCE, p.url, errorText(err), { cause: err, retryable: true })
  }
}

/** Read TFT/USD (and optionally a pricing policy) from a TFChain node; connection trouble and timeouts are retryable. */
export async function fetchTfchain(p: FetchTfchainParameters): Promise<TfchainReading> {
  return run(p, (api, provider, race) => readPrices(p, api, provider, race))
}

export type FetchTfchainPolicyParameters = Omit<FetchTfchainParameters, 'pricingPolicyId' | 'maxUsdPerTft'> & {
  /** Pricing policy id (1 is the default policy). */
  pricingPolicyId: number
}

/** Read only the pricing policy `pricingPolicyId` from a TFChain node (an unset or zero TFT price does not matter here). */
export async function fetchTfchainPricingPolicy(p: FetchTfchainPolicyParameters): Promise<{ policy: ThreefoldPricingPolicy; specVersion: number }> {
  return run(p, async (api, provider, race) => ({ policy: await race(readPolicy(api, provider, p.pricingPolicyId)), specVersion: api.runtimeVersion.specVersion.toNumber() }))
}
