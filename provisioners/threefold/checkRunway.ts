/**
 * The TFT runway check before a deployment: the twin's free TFT must pay `minRunwayHours` of every grid contract it
 * holds plus the new one, each converted from USD at the current rate with the configured buffer.
 */
import { Usd, type Decimal } from '../../core/money.js'
import { ProvisionError } from '../errors.js'

export type CheckRunwayParameters = {
  freeTft: Decimal.Value
  /** USD per hour of the twin's live deployments. */
  runningHourlyUsd: readonly Decimal.Value[]
  /** USD per hour of what is about to be deployed. */
  newHourlyUsd: Decimal.Value
  usdPerTft: Decimal.Value
  /** Fraction added to each conversion ("0.02"). */
  buffer: Decimal.Value
  minRunwayHours: number
}

/** TFT per hour for a USD per hour cost, buffer included. */
export function hourlyTft(hourlyUsd: Decimal.Value, usdPerTft: Decimal.Value, buffer: Decimal.Value): Decimal {
  return new Usd(hourlyUsd).div(usdPerTft).mul(new Usd(1).add(buffer))
}

/** Hours the balance lasts; throws TFT_RUNWAY_TOO_SHORT (failover: quota, provider) below `minRunwayHours`. */
export function checkRunway(p: CheckRunwayParameters): { hours: Decimal; burnTftPerHour: Decimal } {
  if (!new Usd(p.usdPerTft).gt(0)) throw new ProvisionError('no TFT/USD rate to convert grid prices', { code: 'TFT_RATE_UNKNOWN', retryable: true, meta: { failover: { kind: 'price-changed', scope: 'provider' } } })
  const burn = [...p.runningHourlyUsd, p.newHourlyUsd].reduce<Decimal>((acc, h) => acc.add(hourlyTft(h, p.usdPerTft, p.buffer)), new Usd(0))
  const hours = burn.gt(0) ? new Usd(p.freeTft).div(burn) : new Usd(Infinity)
  if (hours.lt(p.minRunwayHours)) {
    throw new ProvisionError('the TFT balance cannot pay the grid contracts for the minimum runway', {
      code: 'TFT_RUNWAY_TOO_SHORT',
      retryable: false,
      details: [`free ${new Usd(p.freeTft).toFixed(2)} TFT pays ${hours.toFixed(1)} h of ${burn.toFixed(4)} TFT/h; min_runway_hours is ${p.minRunwayHours}`],
      meta: { failover: { kind: 'quota', scope: 'provider' } },
    })
  }
  return { hours, burnTftPerHour: burn }
}
