/**
 * The normalized ChainEvent union the daemon consumes. `(chainId, txHash, logIndex)` is an event's identity;
 * handling is idempotent on it.
 */
import type { Preferences } from '../core/spec.js'

export type Hex = `0x${string}`
export type Address = `0x${string}`

export type EventMeta = {
  chainId: number
  blockNumber: bigint
  blockHash: Hex
  txHash: Hex
  logIndex: number
}

/** Preferences as decoded from the request's bytes; undecodable bytes are kept raw with the reason. */
export type DecodedPreferences = { ok: true; value: Preferences } | { ok: false; error: string; raw: Hex }

export type ChainEvent = EventMeta &
  (
    | { type: 'BlueprintRegistered'; blueprintId: bigint; developer: Address; name: string }
    | {
        type: 'ServiceInitiated'
        serviceId: bigint
        blueprintId: bigint
        customer: Address
        operator: Address
        /** Tier index as requested on chain (0 basic, 1 standard, 2 premium; anything else is unknown). */
        tier: number
        preferences: DecodedPreferences
        ttlSeconds: bigint
        deposit: bigint
        /** The tier's rate locked at request, base units per hour. */
        ratePerHour: bigint
      }
    /** Metering starts: settledAt = activatedAt; endsAt = activatedAt + TTL. */
    | { type: 'ServiceActivated'; serviceId: bigint; activatedAt: bigint; endsAt: bigint }
    /** `balance` and `settledAt` are the escrow's after the payment (the accrual up to then is settled first). */
    | { type: 'PaymentReceived'; serviceId: bigint; payer: Address; amount: bigint; balance: bigint; paidUntil: bigint; settledAt: bigint }
    /** `balance` and `settledAt` after settling at the old rate. */
    | { type: 'TierChanged'; serviceId: bigint; tier: number; ratePerHour: bigint; balance: bigint; settledAt: bigint }
    | { type: 'ServiceTerminated'; serviceId: bigint; by: Address }
    /** `balance` and `settledAt` after the settlement the withdrawal made. */
    | { type: 'Withdrawn'; serviceId: bigint; operator: Address; amount: bigint; balance: bigint; settledAt: bigint }
    | { type: 'Refunded'; serviceId: bigint; customer: Address; amount: bigint; reason: string }
  )

export type ChainEventType = ChainEvent['type']

/** The identity of an event: `${chainId}:${txHash}:${logIndex}`. */
export function eventId(e: Pick<EventMeta, 'chainId' | 'txHash' | 'logIndex'>): string {
  return `${e.chainId}:${e.txHash.toLowerCase()}:${e.logIndex}`
}
