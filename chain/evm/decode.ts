/**
 * Decode a log of BlueprintRegistry or ServiceEscrow into the normalized ChainEvent. Also re-exports the decoders of
 * the values carried inside events and views (preferences, blueprints, reasons).
 */
import { decodeEventLog, toEventSelector, type Hex, type Log } from 'viem'
import { blueprintRegistryAbi, serviceEscrowAbi } from '../contracts/abi.js'
import type { ChainEvent, EventMeta } from '../events.js'
import { MalformedEventError } from './errors.js'
import { decodePreferences } from './preferences.js'
import { bytes32ToReason } from './reason.js'

export { decodePreferences, encodePreferences, maxPreferencesBytes } from './preferences.js'
export { decodeBlueprint, decodeSource, isImageRepository } from './blueprint.js'
export type { Blueprint, BlueprintSource, DecodedSource, RawBlueprint } from './blueprint.js'
export { bytes32ToReason, reasonToBytes32 } from './reason.js'
export { maxAmount, maxRatePerHour, maxTiers, maxTtlSeconds, priceProblems, requestProblems } from './bounds.js'

/** Every event the daemon consumes, from both contracts. */
export const chainEventAbi = [
  ...blueprintRegistryAbi.filter((x) => x.type === 'event'),
  ...serviceEscrowAbi.filter((x) => x.type === 'event'),
] as const

/**
 * Each event of `chainEventAbi` by its topic0: `decodeEventLog` over the whole ABI formats and hashes every event's
 * signature until one matches (most of a decode's cost); over the one matching event it decodes at once.
 */
const bySelector = new Map<Hex, readonly [(typeof chainEventAbi)[number]]>(chainEventAbi.map((item) => [toEventSelector(item), [item]] as const))

/** The identity and position of a log, for error messages (works on logs that do not decode). */
export function logIdentity(log: Pick<Log, 'blockNumber' | 'transactionHash' | 'logIndex' | 'address'>, chainId: number) {
  return {
    chainId,
    blockNumber: log.blockNumber?.toString(),
    txHash: log.transactionHash,
    logIndex: log.logIndex,
    address: log.address,
  }
}

/** Decode one log; throws MalformedEventError (code MALFORMED_EVENT) when it is not one of our events. */
export function decodeLog(log: Log, chainId: number): ChainEvent {
  const identity = logIdentity(log, chainId)
  if (log.blockNumber === null || log.blockHash === null || log.transactionHash === null || log.logIndex === null)
    throw new MalformedEventError(['pending log: no block, transaction or index'], identity)
  if (log.removed) throw new MalformedEventError(['log was removed by a reorg'], identity)
  const meta: EventMeta = {
    chainId,
    blockNumber: log.blockNumber,
    blockHash: log.blockHash,
    txHash: log.transactionHash,
    logIndex: log.logIndex,
  }
  let decoded
  try {
    decoded = decodeEventLog({ abi: (log.topics[0] && bySelector.get(log.topics[0])) || chainEventAbi, data: log.data, topics: log.topics as [Hex, ...Hex[]], strict: true })
  } catch (err) {
    throw new MalformedEventError([`topic0 ${log.topics[0] ?? '(none)'} with ${(log.data.length - 2) / 2} data bytes`], identity, err)
  }
  const wide = widthProblems(decoded.eventName, log.topics, log.data)
  if (wide.length) throw new MalformedEventError(wide, identity)
  switch (decoded.eventName) {
    case 'BlueprintRegistered':
      return { ...meta, type: 'BlueprintRegistered', blueprintId: decoded.args.blueprintId, developer: decoded.args.developer, name: decoded.args.name }
    case 'ServiceInitiated': {
      const a = decoded.args
      return {
        ...meta,
        type: 'ServiceInitiated',
        serviceId: a.serviceId,
        blueprintId: a.blueprintId,
        customer: a.customer,
        operator: a.operator,
        tier: a.tier,
        preferences: decodePreferences(a.preferences),
        ttlSeconds: a.ttlSeconds,
        deposit: a.deposit,
        ratePerHour: a.ratePerHour,
      }
    }
    case 'ServiceActivated':
      return { ...meta, type: 'ServiceActivated', serviceId: decoded.args.serviceId, activatedAt: decoded.args.activatedAt, endsAt: decoded.args.endsAt }
    case 'PaymentReceived': {
      const a = decoded.args
      return { ...meta, type: 'PaymentReceived', serviceId: a.serviceId, payer: a.payer, amount: a.amount, balance: a.balance, paidUntil: a.paidUntil, settledAt: a.settledAt }
    }
    case 'TierChanged': {
      const a = decoded.args
      return { ...meta, type: 'TierChanged', serviceId: a.serviceId, tier: a.tier, ratePerHour: a.ratePerHour, balance: a.balance, settledAt: a.settledAt }
    }
    case 'ServiceTerminated':
      return { ...meta, type: 'ServiceTerminated', serviceId: decoded.args.serviceId, by: decoded.args.by }
    case 'Withdrawn': {
      const a = decoded.args
      return { ...meta, type: 'Withdrawn', serviceId: a.serviceId, operator: a.operator, amount: a.amount, balance: a.balance, settledAt: a.settledAt }
    }
    case 'Refunded': {
      const a = decoded.args
      return { ...meta, type: 'Refunded', serviceId: a.serviceId, customer: a.customer, amount: a.amount, reason: bytes32ToReason(a.reason) }
    }
  }
}

/**
 * Words wider than their ABI type (a uint8 tier of 300, a uint64 of 2^64, an address with high bytes set): the
 * contracts never emit them, and viem would pass some through (small uints) or truncate them (addresses).
 */
function widthProblems(eventName: string, topics: readonly Hex[], data: Hex): string[] {
  const item = chainEventAbi.find((x) => x.name === eventName)
  if (!item) return []
  const problems: string[] = []
  let topic = 1
  let head = 0
  for (const p of item.inputs) {
    const word = 'indexed' in p && p.indexed ? topics[topic++] : (`0x${data.slice(2 + 64 * head, 2 + 64 * ++head)}` as Hex)
    const bits = p.type === 'address' ? 160 : Number(/^uint(\d+)$/.exec(p.type)?.[1] ?? 256)
    if (bits < 256 && word && word.length > 2 && BigInt(word) >> BigInt(bits) !== 0n) problems.push(`${p.name}: ${BigInt(word)} does not fit ${p.type}`)
  }
  return problems
}
