/**
 * Money: token amounts are bigint base units; prices are Decimal USD. Never a JS float.
 */
import { Decimal } from 'decimal.js'

export const Usd = Decimal.clone({ precision: 40, rounding: Decimal.ROUND_HALF_EVEN })
export type Usd = Decimal

/** Parse a USD amount given as a decimal string (or bigint). Throws on anything else. */
export function usd(value: string | bigint | Decimal): Decimal {
  if (value instanceof Decimal) return new Usd(value)
  if (typeof value === 'bigint') return new Usd(value.toString())
  const s = value.trim()
  if (!/^-?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(s)) throw new TypeError(`not a decimal amount: ${JSON.stringify(value)}`)
  return new Usd(s)
}

export const ZERO_USD = new Usd(0)

/** Token base units from a decimal string, e.g. toBaseUnits("1.5", 6) = 1500000n. Rejects excess precision. */
export function toBaseUnits(amount: string, decimals: number): bigint {
  const s = amount.trim()
  const m = /^(\d+)(?:\.(\d*))?$/.exec(s)
  if (!m) throw new TypeError(`not a token amount: ${JSON.stringify(amount)}`)
  const whole = m[1]!
  const frac = (m[2] ?? '').replace(/0+$/, '')
  if (frac.length > decimals) throw new TypeError(`${amount} has more than ${decimals} decimals`)
  return BigInt(whole) * 10n ** BigInt(decimals) + BigInt(frac.padEnd(decimals, '0') || '0')
}

/** Format base units as a decimal string, e.g. formatUnits(1500000n, 6) = "1.5". */
export function formatBaseUnits(value: bigint, decimals: number): string {
  const neg = value < 0n
  const v = neg ? -value : value
  const base = 10n ** BigInt(decimals)
  const whole = v / base
  const frac = (v % base).toString().padStart(decimals, '0').replace(/0+$/, '')
  return `${neg ? '-' : ''}${whole}${frac ? `.${frac}` : ''}`
}

/** Convert base units of a token to USD with a configured token→USD rate. */
export function tokenToUsd(value: bigint, decimals: number, usdPerToken: Decimal): Decimal {
  return new Usd(value.toString()).div(tenTo(decimals)).mul(usdPerToken)
}

// 10^decimals, computed once per token (Decimal's pow allocated a few KB per call, per service per tick)
const tens = new Map<number, Decimal>()
const tenTo = (decimals: number): Decimal => {
  let t = tens.get(decimals)
  if (!t) tens.set(decimals, (t = new Usd(10).pow(decimals)))
  return t
}

/** Convert USD to token base units, rounding up (what the operator must charge to cover a cost). */
export function usdToTokenCeil(value: Decimal, decimals: number, usdPerToken: Decimal): bigint {
  const units = value.div(usdPerToken).mul(tenTo(decimals)).toDecimalPlaces(0, Decimal.ROUND_CEIL)
  return BigInt(units.toFixed(0))
}

/** Escrow arithmetic mirrored from ServiceEscrow.sol. Rates are base units per hour; times are unix seconds. */
export function accrued(balance: bigint, ratePerHour: bigint, settledAt: bigint, now: bigint): bigint {
  if (now <= settledAt || ratePerHour === 0n) return 0n
  const owed = (ratePerHour * (now - settledAt)) / 3600n // rounds down: favours the customer
  return owed < balance ? owed : balance
}

/** Time up to which the balance pays at `ratePerHour`, from `settledAt`. */
export function paidUntil(balance: bigint, ratePerHour: bigint, settledAt: bigint): bigint {
  if (ratePerHour === 0n) return settledAt
  return settledAt + (balance * 3600n) / ratePerHour
}

export { Decimal }
