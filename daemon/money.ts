/**
 * One service's money so far, from its record: what the customer paid, what the operator earned (withdrawn, or
 * accrued while it runs), what was refunded, what is still in escrow, the capacity's cost and the margin. One place
 * for the API, the dashboard and the metrics. Token amounts are base-unit decimal strings; USD are decimal strings.
 */
import { tokenToUsd, usd, type Decimal } from '../core/money.js'
import type { ServiceRecord } from './state.js'

export type Money = {
  paid: string
  earned: string
  refunded: string
  /** Paid, neither earned nor refunded yet (the unserved balance). */
  escrowed: string
  cloudCostUsd: string
  /** Earned in USD minus the capacity's cost so far. */
  marginUsd: string
  /** What the service's payment brings per hour (0 unless it runs paid), USD. */
  incomeUsdPerHour: string
  /** What its capacity costs per hour now (replicas × hourly cost), USD. */
  costUsdPerHour: string
}

export type TokenInfo = { decimals: number; usdPerToken: Decimal }

const big = (s: string | undefined) => (s && /^\d+$/.test(s) ? BigInt(s) : 0n)

/** Money of `r` at chain time `nowSec` (unix seconds). */
export function moneyOf(r: ServiceRecord, nowSec: bigint, token: TokenInfo): Money {
  const paid = big(r.ledger.paid)
  const refunded = big(r.ledger.refunded)
  const terminal = r.state === 'closed' || r.state === 'refunded'
  const rate = big(r.chain?.ratePerHour)
  const until = big(r.chain?.paidUntil)
  let earned: bigint
  if (terminal || r.state === 'requested' || r.state === 'provisioning' || r.state === 'refunding' || !r.chain?.ratePerHour) earned = big(r.ledger.earned)
  else {
    // still running: everything paid is earned except the refunded part and what the balance still covers
    const unserved = until > nowSec ? ((until - nowSec) * rate) / 3600n : 0n
    earned = paid - refunded - unserved
    if (earned < big(r.ledger.earned)) earned = big(r.ledger.earned)
    if (earned < 0n) earned = 0n
  }
  let escrowed = paid - earned - refunded
  if (terminal || escrowed < 0n) escrowed = 0n
  const cost = usd(r.ledger.cloudCostUsd || '0')
  const running = (r.state === 'active' || r.state === 'scaled-to-zero') && until > nowSec
  const costPerHour = r.quote && r.replicas > 0 ? usd(r.quote.hourlyUsd).mul(r.replicas) : usd('0')
  return {
    paid: paid.toString(),
    earned: earned.toString(),
    refunded: refunded.toString(),
    escrowed: escrowed.toString(),
    cloudCostUsd: cost.toDecimalPlaces(6).toFixed(),
    marginUsd: tokenToUsd(earned, token.decimals, token.usdPerToken).minus(cost).toDecimalPlaces(6).toFixed(),
    incomeUsdPerHour: running ? tokenToUsd(rate, token.decimals, token.usdPerToken).toDecimalPlaces(6).toFixed() : '0',
    costUsdPerHour: costPerHour.toDecimalPlaces(6).toFixed(),
  }
}
