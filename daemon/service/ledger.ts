/** The per-service ledger's capacity cost: what running the service's replicas costs the operator, accrued as it happens. */
import { usd } from '../../core/money.js'
import type { Payout } from '../../chain/evm/payouts.js'
import type { ServiceRecord } from '../state.js'

/**
 * Add the capacity's cost since the last accrual (hourly USD × replicas running meanwhile) to the ledger. Called
 * before every change of the replica count and at each reconcile; a gap longer than an hour (the daemon was down)
 * is counted as one hour at most rather than billed blindly. Replica-hours are recorded beside the cost; a cloud
 * service at zero accrues its kept disks' price (`quote.stoppedHourlyUsd` per replica). A ThreeFold Grid service's
 * cost is what TFChain bills its contracts (the daemon follows the twin's bills): only its replica-hours accrue here.
 */
export function accrueCost(r: ServiceRecord, at = new Date()): void {
  const ms = r.costSince ? Math.min(Math.max(0, at.getTime() - Date.parse(r.costSince)), 3_600_000) : 0
  if (ms > 0 && r.replicas > 0 && r.quote) {
    const hours = usd(String(r.replicas)).mul(ms).div(3_600_000)
    // grid capacity is paid by TFChain's bills, counted as they come (daemon/tfchainIntake.ts), not estimated here
    if (!billedByTfchain(r)) r.ledger.cloudCostUsd = usd(r.ledger.cloudCostUsd).plus(usd(r.quote.hourlyUsd).mul(hours)).toDecimalPlaces(12).toFixed()
    r.ledger.replicaHours = usd(r.ledger.replicaHours ?? '0').plus(hours).toDecimalPlaces(9).toFixed()
  } else if (ms > 0 && r.replicas === 0 && r.state === 'scaled-to-zero' && r.quote?.stoppedHourlyUsd && r.spec) {
    // a cloud replica at zero keeps its disk (EBS, a Hetzner volume), billed while stopped
    const hours = usd(String(Math.max(1, r.spec.replicas))).mul(ms).div(3_600_000)
    r.ledger.cloudCostUsd = usd(r.ledger.cloudCostUsd).plus(usd(r.quote.stoppedHourlyUsd).mul(hours)).toDecimalPlaces(12).toFixed()
  }
  r.costSince = at.toISOString()
}

/** The capacity cost comes from TFChain's contract bills (a service placed on the ThreeFold Grid). */
export function billedByTfchain(r: ServiceRecord): boolean {
  return r.quote?.provider === 'threefold'
}

/** The payouts an escrow write's receipt carried (withdraw / refund results), none for 'nothing' or 'already'. */
export function payoutsOf(res: unknown): Payout[] {
  const p = (res as { payouts?: unknown } | undefined)?.payouts
  return Array.isArray(p) ? (p as Payout[]) : []
}
