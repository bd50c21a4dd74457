/**
 * What a contract bill cost, in TFT and in USD at the rate of the moment, and which deployment it belongs to (the
 * ledger's "TFT spent per service"). A VM replica's deployment is named `<deploymentId>-r<i>`.
 */
import { Usd, type Decimal } from '../../core/money.js'
import type { TfchainEvent } from './events.js'

/** TFChain's base unit: 1 TFT = 10^7 units. */
export const TFT_UNITS = 10_000_000n

export type BilledTft = { contractId: string; deploymentId?: string; tft: Decimal; usd: Decimal; billedAt: number }

/** The bill in TFT and USD; `deploymentId` when the contract's deployment name is one of ours. */
export function billedTft(e: Extract<TfchainEvent, { type: 'contract-billed' }>, usdPerTft: Decimal.Value): BilledTft {
  const tft = new Usd(e.amountBilled.toString()).div(TFT_UNITS.toString())
  const deploymentId = e.deploymentName ? /^(.+)-r\d+$/.exec(e.deploymentName)?.[1] : undefined
  return { contractId: e.contractId, ...(deploymentId && { deploymentId }), tft, usd: tft.mul(usdPerTft), billedAt: e.billedAt }
}
