/**
 * The bounds the contracts enforce (ServiceEscrow, BlueprintRegistry), mirrored for the daemon: a request whose TTL,
 * deposit, rate or tier lies outside them is malformed, whatever contract emitted it (an older or foreign escrow
 * may let it through), and is refunded before it is quoted. Within them no computation of the escrow can overflow.
 */

/** Longest TTL: 100 years of 365 days (ServiceEscrow.MAX_TTL). */
export const maxTtlSeconds = 100n * 365n * 86_400n
/** Largest deposit, top-up and balance, token base units (ServiceEscrow.MAX_AMOUNT = 2^128 - 1). */
export const maxAmount = 2n ** 128n - 1n
/** Largest rate / price, token base units per hour (ServiceEscrow.MAX_RATE, BlueprintRegistry.MAX_PRICE). */
export const maxRatePerHour = 2n ** 128n - 1n
/** Most tiers a blueprint may price; tier indexes are 0 .. maxTiers - 1 (BlueprintRegistry.MAX_TIERS). */
export const maxTiers = 16

export type RequestValues = { ttlSeconds: bigint; deposit: bigint; ratePerHour: bigint; tier: number }

/** What is out of bounds in a request, as problems for a MALFORMED_REQUEST refund; empty when all is well. */
export function requestProblems(r: RequestValues): string[] {
  const problems: string[] = []
  if (r.ttlSeconds <= 0n || r.ttlSeconds > maxTtlSeconds) problems.push(`ttl: ${r.ttlSeconds} s is outside 1 .. ${maxTtlSeconds} s (100 years)`)
  if (r.deposit <= 0n || r.deposit > maxAmount) problems.push(`deposit: ${r.deposit} is outside 1 .. 2^128-1 base units`)
  if (r.ratePerHour <= 0n || r.ratePerHour > maxRatePerHour) problems.push(`rate: ${r.ratePerHour} per hour is outside 1 .. 2^128-1 base units`)
  if (!Number.isInteger(r.tier) || r.tier < 0 || r.tier >= maxTiers) problems.push(`tier: ${r.tier} is outside 0 .. ${maxTiers - 1}`)
  return problems
}

/** Whether a price list of a blueprint is within the registry's bounds (a foreign registry may hold anything). */
export function priceProblems(prices: readonly bigint[]): string[] {
  const problems: string[] = []
  if (prices.length > maxTiers) problems.push(`prices: ${prices.length} tiers, at most ${maxTiers}`)
  prices.forEach((p, i) => {
    if (p <= 0n || p > maxRatePerHour) problems.push(`prices[${i}]: ${p} per hour is outside 1 .. 2^128-1 base units`)
  })
  return problems
}
