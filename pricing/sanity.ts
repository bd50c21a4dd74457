/**
 * Sanity checks that keep garbage out of the catalog: per offer (prices and specs) and per refresh (shrinkage).
 */
import { Decimal } from 'decimal.js'
import type { Offer } from '../core/offer.js'
import { defaultPricingConfig, type SanityLimits } from './config.js'
import type { ParseResult, Rejected } from './sources/types.js'

export const defaultSanityLimits: SanityLimits = defaultPricingConfig('').sanity

type Compiled = { max: Decimal; placeholders: Decimal[]; limits: SanityLimits }
const compiled = new WeakMap<SanityLimits, Compiled>()
function compile(limits: SanityLimits): Compiled {
  let c = compiled.get(limits)
  if (!c) {
    c = { max: new Decimal(limits.maxHourlyUsd), placeholders: limits.placeholderUsd.map((p) => new Decimal(p)), limits }
    compiled.set(limits, c)
  }
  return c
}

/** Why a price is unusable, or undefined when it is fine. */
export function priceProblem(price: Decimal, what: string, limits: SanityLimits = defaultSanityLimits): string | undefined {
  const p = checkPrice(price, limits)
  return p === undefined ? undefined : `${what} ${p}`
}

function checkPrice(price: Decimal, limits: SanityLimits): string | undefined {
  const c = compile(limits)
  if (!price.isFinite()) return `${price} is not a finite number`
  if (price.isNegative()) return `${price} is negative`
  if (price.isZero()) return 'is zero'
  if (c.placeholders.some((p) => p.eq(price))) return `${price.toString()} is a placeholder`
  if (price.gt(c.max)) return `${price.toString()} is above the sanity cap of ${limits.maxHourlyUsd} USD/h`
  return undefined
}

/** Every problem of one offer (empty when it may enter the catalog); `checkPrice: false` when already checked. */
export function offerProblems(o: Offer, limits: SanityLimits = defaultSanityLimits, checkPrice = true): string[] {
  const out: string[] = []
  const p = checkPrice ? priceProblem(o.hourlyUsd, 'hourly price', limits) : undefined
  if (p) out.push(p)
  if (!(Number.isFinite(o.vcpu) && o.vcpu > 0 && o.vcpu <= limits.maxVcpu)) out.push(`vCPU ${o.vcpu} outside (0, ${limits.maxVcpu}]`)
  if (!(Number.isFinite(o.memoryGiB) && o.memoryGiB > 0 && o.memoryGiB <= limits.maxMemoryGiB))
    out.push(`memory ${o.memoryGiB} GiB outside (0, ${limits.maxMemoryGiB}]`)
  if (!(Number.isInteger(o.gpu.count) && o.gpu.count >= 0 && o.gpu.count <= limits.maxGpuCount))
    out.push(`GPU count ${o.gpu.count} outside [0, ${limits.maxGpuCount}]`)
  if (!(Number.isFinite(o.includedStorageGiB) && o.includedStorageGiB >= 0)) out.push(`included storage ${o.includedStorageGiB} GiB is invalid`)
  if (!o.region) out.push('no region')
  if (!o.instanceType) out.push('no instance type')
  return out
}

/** Drop an unusable spot price (it never disqualifies the on-demand offer); returns why it was dropped. */
export function cleanSpot(o: Offer, limits: SanityLimits = defaultSanityLimits): string | undefined {
  if (!o.spotHourlyUsd) return undefined
  const p = priceProblem(o.spotHourlyUsd, 'spot price', limits)
  if (p) o.spotHourlyUsd = undefined
  return p
}

/**
 * Apply the per-offer checks to a parser's output: failing offers move to `rejected`. `pricesChecked`: the parser
 * already ran priceProblem on every price it kept (spares the Decimal comparisons on big catalogs).
 */
export function screen(result: ParseResult, limits: SanityLimits = defaultSanityLimits, pricesChecked = false): ParseResult {
  const offers: Offer[] = []
  const rejected = [...result.rejected]
  for (const o of result.offers) {
    if (!pricesChecked) cleanSpot(o, limits)
    const problems = offerProblems(o, limits, !pricesChecked)
    if (problems.length) rejected.push({ row: `${o.instanceType}@${o.region}`, why: problems.join('; ') })
    else offers.push(o)
  }
  return { offers, rejected }
}

/** Why a refresh must not replace the previous offers of a source, or undefined when it may. */
export function refreshProblem(previousCount: number, nextCount: number, limits: SanityLimits = defaultSanityLimits): string | undefined {
  if (nextCount === 0) return 'the refresh produced no usable offers'
  if (previousCount > 0 && nextCount < previousCount * limits.minKeepFraction)
    return `the refresh shrank the source from ${previousCount} to ${nextCount} offers (more than ${Math.round((1 - limits.minKeepFraction) * 100)} % fewer)`
  return undefined
}
