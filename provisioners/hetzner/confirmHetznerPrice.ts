/**
 * Live Hetzner price of one server type in one location (GET /pricing with the project's token), for placement to
 * confirm a catalog price before buying. Hetzner prices in EUR: the net hourly price is converted with `eurUsd`.
 */
import type { Secret } from '../../config/secrets.js'
import { failoverError } from '../cloud/errors.js'
import { createHetznerApi } from './hetznerApi.js'

export type ConfirmHetznerPriceParameters = {
  token: Secret
  /** API base, default "https://api.hetzner.cloud/v1". */
  endpoint?: string
  serverType: string
  location: string
  /** EUR -> USD, decimal string (e.g. "1.08"). */
  eurUsd: string
  signal: AbortSignal
  timeoutMs?: number
}

type Pricing = { pricing: { currency: string; server_types: { name: string; prices: { location: string; price_hourly: { net: string; gross: string } }[] }[] } }

/** Multiply two decimal strings exactly, keeping every digit. */
function mulDecimal(a: string, b: string): string {
  const [ai, af = ''] = a.split('.')
  const [bi, bf = ''] = b.split('.')
  const scale = af.length + bf.length
  const prod = (BigInt(ai! + af) * BigInt(bi! + bf)).toString().padStart(scale + 1, '0')
  const int = prod.slice(0, prod.length - scale)
  const frac = prod.slice(prod.length - scale).replace(/0+$/, '')
  return frac ? `${int}.${frac}` : int
}

/** The live net hourly price in USD as a decimal string. Throws CLOUD_CAPACITY when the type is not sold there. */
export async function confirmHetznerPrice(p: ConfirmHetznerPriceParameters): Promise<string> {
  const api = createHetznerApi({ endpoint: p.endpoint ?? 'https://api.hetzner.cloud/v1', token: p.token, timeoutMs: p.timeoutMs })
  const r = await api.call<Pricing>('GET', '/pricing', undefined, p.signal)
  const row = r.pricing.server_types.find((t) => t.name === p.serverType)?.prices.find((x) => x.location === p.location)
  if (!row || !/^\d+(\.\d+)?$/.test(row.price_hourly.net)) throw failoverError('hetzner', { kind: 'capacity', scope: 'offer' }, `${p.serverType} is not priced in ${p.location}`)
  if (r.pricing.currency !== 'EUR' && r.pricing.currency !== 'USD') throw failoverError('hetzner', { kind: 'price-changed', scope: 'provider' }, `unexpected pricing currency ${r.pricing.currency}`)
  return r.pricing.currency === 'USD' ? row.price_hourly.net : mulDecimal(row.price_hourly.net, p.eurUsd)
}
