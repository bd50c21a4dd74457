/**
 * The twin check: `[providers.threefold] twin_id` must be the twin of the mnemonic's account on TFChain (sr25519, as
 * grid_client derives it). The daemon follows `twin_id`'s contracts while grid_client deploys and pays as the
 * mnemonic's twin: two different twins would mean bills, grace periods and cancellations of the deployments the
 * daemon makes are never seen, and another twin's are acted on. A mismatch is a configuration error
 * (GRID_TWIN_MISMATCH, not retryable); an unreachable TFChain is RPC_UNAVAILABLE (retryable).
 */
import type { ApiPromise } from '@polkadot/api'
import { BaseError } from '../../core/errors.js'
import { withTimeout } from '../../core/retry.js'

export type CheckTwinParameters = {
  /** WebSocket URL of a TFChain node. */
  url: string
  /** polkadot.js types for runtimes whose metadata carries none (v12). */
  types?: Record<string, unknown>
  /** The operator's mnemonic (revealed by the caller; never logged or put in an error). */
  mnemonic: string
  /** The configured twin id. */
  twinId: number
  /** Whole check, ms. Default 20 000. */
  timeoutMs?: number
  signal?: AbortSignal
}

export type CheckTwinReturnType = { address: string; twinId: number }

/** A configured twin id that is not the mnemonic's twin (or a mnemonic that derives no account with a twin). */
export class GridTwinMismatchError extends BaseError {
  override name = 'GridTwinMismatchError'
  constructor(p: { configured: number; actual: number | undefined; address?: string }) {
    const who = p.address ? `the mnemonic's account ${p.address}` : 'the mnemonic'
    const is = p.actual === undefined ? 'does not derive an sr25519 account' : p.actual === 0 ? 'has no twin on this TFChain' : `is twin ${p.actual}`
    super(`[providers.threefold] twin_id is ${p.configured}, but ${who} ${is}`, {
      code: 'GRID_TWIN_MISMATCH',
      retryable: false,
      details: ['set twin_id to the twin of the mnemonic (the dashboard shows it beside the account), or use that twin\'s mnemonic'],
      meta: { configured: p.configured, ...(p.actual !== undefined && { actual: p.actual }), ...(p.address && { address: p.address }) },
    })
  }
}

/** The mnemonic's sr25519 address (what grid_client signs with); undefined when it derives none. */
export async function accountOfMnemonic(mnemonic: string): Promise<string | undefined> {
  const [{ Keyring }, { cryptoWaitReady }] = await Promise.all([import('@polkadot/keyring'), import('@polkadot/util-crypto')])
  await cryptoWaitReady()
  try {
    return new Keyring({ type: 'sr25519' }).addFromUri(mnemonic).address
  } catch {
    // the keyring's message may quote the phrase: nothing of it goes further
    return undefined
  }
}

/** Read `tfgridModule.twinIdByAccountID` of the mnemonic's account and compare it with `twinId`. */
export async function checkTwin(p: CheckTwinParameters): Promise<CheckTwinReturnType> {
  const address = await accountOfMnemonic(p.mnemonic)
  if (!address) throw new GridTwinMismatchError({ configured: p.twinId, actual: undefined })
  const { ApiPromise, WsProvider } = await import('@polkadot/api')
  const provider = new WsProvider(p.url, false)
  let api: ApiPromise | undefined
  let actual: number
  try {
    actual = await withTimeout('TFChain twin check', p.timeoutMs ?? 20_000, async () => {
      await provider.connect()
      api = await ApiPromise.create({ provider, types: p.types as never, noInitWarn: true, throwOnConnect: true })
      const id = await api.query.tfgridModule!.twinIdByAccountID!(address)
      return Number((id as unknown as { toString(): string }).toString())
    }, p.signal)
  } catch (err) {
    throw err instanceof BaseError ? err : new BaseError('TFChain did not answer the twin check', { code: 'RPC_UNAVAILABLE', retryable: true, cause: err })
  } finally {
    await (api ? api.disconnect() : provider.disconnect()).catch(() => {})
  }
  if (actual !== p.twinId) throw new GridTwinMismatchError({ configured: p.twinId, actual, address })
  return { address, twinId: actual }
}
