import type { Decimal } from 'decimal.js'
import { fetchTfchain } from '../pricing/sources/tfchain.js'

/**
 * USD per TFT as TFChain itself bills (`tftPriceModule`), read from `url` and kept 10 minutes: the grid target's
 * runway check and the TFChain watcher's bill values use it.
 */
export function cachedTftUsd(url: string, read: () => Promise<Decimal> = async () => (await fetchTfchain({ url, timeoutMs: 15_000 })).usdPerTft): () => Promise<Decimal> {
  let rate: { at: number; value: Decimal } | undefined
  return async () => {
    if (!rate || Date.now() - rate.at > 600_000) rate = { at: Date.now(), value: await read() }
    return rate.value
  }
}
