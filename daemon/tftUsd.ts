import type { Decimal } from 'decimal.js'
import { fetchTfchain } from '../pricing/sources/tfchain.js'

/** Read USD per TFT from TFChain's `tftPriceModule` at `url` (`types`: the runtime's type definitions, when needed). */
export const tftUsdReader = (url: string, types?: Record<string, unknown>) => async (): Promise<Decimal> => (await fetchTfchain({ url, timeoutMs: 15_000, ...(types && { types }) })).usdPerTft

/**
 * USD per TFT as TFChain itself bills (`tftPriceModule`), read from `url` and kept 10 minutes: the grid target's
 * runway check and the TFChain watcher's bill values use it.
 */
export function cachedTftUsd(url: string, read: () => Promise<Decimal> = tftUsdReader(url)): () => Promise<Decimal> {
  let rate: { at: number; value: Decimal } | undefined
  return async () => {
    if (!rate || Date.now() - rate.at > 600_000) rate = { at: Date.now(), value: await read() }
    return rate.value
  }
}
