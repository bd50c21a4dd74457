/** The per-service ledger's capacity cost: what running the service's replicas costs the operator, accrued as it happens. */
import { usd } from '../../core/money.js'
import type { ServiceRecord } from '../state.js'

/**
 * Add the capacity's cost since the last accrual (hourly USD × replicas running meanwhile) to the ledger. Called
 * before every change of the replica count and at each reconcile; a gap longer than an hour (the daemon was down)
 * is counted as one hour at most rather than billed blindly. Replica-hours are recorded beside the cost.
 */
export function accrueCost(r: ServiceRecord, at = new Date()): void {
  if (r.costSince && r.replicas > 0 && r.quote) {
    const ms = Math.min(Math.max(0, at.getTime() - Date.parse(r.costSince)), 3_600_000)
    const hours = usd(String(r.replicas)).mul(ms).div(3_600_000)
    r.ledger.cloudCostUsd = usd(r.ledger.cloudCostUsd).plus(usd(r.quote.hourlyUsd).mul(hours)).toDecimalPlaces(12).toFixed()
    r.ledger.replicaHours = usd(r.ledger.replicaHours ?? '0').plus(hours).toDecimalPlaces(9).toFixed()
  }
  r.costSince = at.toISOString()
}
