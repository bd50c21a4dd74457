/**
 * One rule for counting what the escrow paid out (Withdrawn to the operator, Refunded to the customer) in a service's
 * ledger exactly once, whether it is first seen in the receipt of the daemon's own transaction (so a service's ledger
 * at `closed` already equals what the chain paid out) or in the follower's confirmed events (a payout the daemon did
 * not send, or one whose receipt a crash lost).
 */
import { eventId } from '../chain/events.js'
import type { Payout } from '../chain/evm/payouts.js'
import type { ServiceRecord } from './state.js'

const add = (a: string, b: bigint) => (BigInt(a) + b).toString()

/**
 * Count one payout (`id` = its event identity) in the ledger unless it was counted already. Returns whether it was
 * counted now. A withdrawal is also what the operator earned.
 */
export function countPayout(r: ServiceRecord, id: string, kind: Payout['kind'], amount: bigint): boolean {
  if (r.paidOut?.includes(id)) return false
  ;(r.paidOut ??= []).push(id)
  if (kind === 'Withdrawn') {
    r.ledger.withdrawn = add(r.ledger.withdrawn, amount)
    r.ledger.earned = add(r.ledger.earned, amount)
  } else r.ledger.refunded = add(r.ledger.refunded, amount)
  return true
}

/** Count the payouts of a receipt (escrow.withdraw / escrow.refund results) in the record's ledger; returns how many were new. */
export function recordPayouts(r: ServiceRecord, chainId: number, payouts: readonly Payout[]): number {
  let n = 0
  for (const p of payouts) if (countPayout(r, eventId({ chainId, txHash: p.txHash, logIndex: p.logIndex }), p.kind, p.amount)) n++
  return n
}
