/**
 * What one escrow transaction paid out, read from its receipt: the Withdrawn (to the operator) and Refunded (to the
 * customer) events of a service, each with its event identity, so the ledger can count them the moment the
 * transaction is mined and skip the same events when the follower delivers them after the confirmations.
 */
import { decodeEventLog, type Address, type Hex, type TransactionReceipt } from 'viem'
import { serviceEscrowAbi } from '../contracts/abi.js'

export type Payout = { kind: 'Withdrawn' | 'Refunded'; amount: bigint; txHash: Hex; logIndex: number; blockNumber: bigint }

/** The escrow's Withdrawn and Refunded events of `serviceId` in `receipt`, in log order. */
export function payoutsInReceipt(receipt: Pick<TransactionReceipt, 'logs' | 'transactionHash' | 'blockNumber'>, escrow: Address, serviceId: bigint): Payout[] {
  const out: Payout[] = []
  for (const l of receipt.logs) {
    if (l.address.toLowerCase() !== escrow.toLowerCase()) continue
    try {
      const e = decodeEventLog({ abi: serviceEscrowAbi, data: l.data, topics: l.topics })
      if ((e.eventName === 'Withdrawn' || e.eventName === 'Refunded') && e.args.serviceId === serviceId) {
        out.push({ kind: e.eventName, amount: e.args.amount, txHash: receipt.transactionHash, logIndex: l.logIndex ?? 0, blockNumber: receipt.blockNumber })
      }
    } catch {
      // other events of the same transaction
    }
  }
  return out
}
