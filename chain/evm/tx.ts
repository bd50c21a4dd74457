/**
 * Send contract transactions one at a time from one account: simulate (so a revert is decoded before anything is
 * signed), send, wait for the receipt, all within a timeout. Errors come out classified (see errors.ts).
 */
import type { Abi, Account, Address, Chain, PublicClient, TransactionReceipt, Transport, WalletClient } from 'viem'
import type { Common } from '../../core/common.js'
import { BaseError } from '../../core/errors.js'
import { faultPoint } from '../../core/faults.js'
import { withTimeout } from '../../core/retry.js'
import { TxFailedError, classifyRpcError } from './errors.js'
import { withScopedSignal } from './signal.js'

export type TxSenderParameters = {
  publicClient: PublicClient
  walletClient: WalletClient<Transport, Chain | undefined, Account>
  /** From simulation to receipt, ms. Default 60_000. */
  timeoutMs?: number
  /**
   * Count the transactions in `chain_transactions_total` (the operator's own: the escrow client). Default false, so a
   * customer's transactions sent from the same process (dev, tests) never inflate the operator's figures.
   */
  countTransactions?: boolean
  /**
   * Several processes sending from this account (daemons sharing one PostgreSQL): runs each send alone among them,
   * so two never take the same nonce. Default: this process's queue only.
   */
  exclusive?: <T>(fn: () => Promise<T>) => Promise<T>
}

export type ContractCall = { address: Address; abi: Abi; functionName: string; args: readonly unknown[] }

export type TxSender = {
  /** Simulate, send and wait for a successful receipt; calls are queued so only one nonce is in flight. */
  send(call: ContractCall, signal?: AbortSignal): Promise<TransactionReceipt>
}

/** One argument as log text: structs and arrays as JSON (bigints as decimals), never `[object Object]`. */
export function argText(a: unknown): string {
  if (a === null || typeof a !== 'object') return String(a)
  const text = JSON.stringify(a, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))
  return text.length > 200 ? `${text.slice(0, 197)}...` : text
}

/** Create a serialized sender for the wallet's account. */
export function createTxSender(common: Common, p: TxSenderParameters): TxSender {
  const log = common.logger.child({ from: p.walletClient.account.address })
  const timeout = p.timeoutMs ?? 60_000
  const counter = p.countTransactions
    ? common.metrics.counter('chain_transactions_total', "The operator's transactions, by function and outcome", { labels: ['function', 'outcome'] })
    : { inc: () => undefined }
  let queue: Promise<unknown> = Promise.resolve()
  return {
    send(call, signal) {
      const what = `${call.functionName}(${call.args.map(argText).join(', ')})`
      const alone = p.exclusive ?? (<T>(fn: () => Promise<T>) => fn())
      const run = queue.then(() =>
        alone(() => withScopedSignal([signal, common.signal], (s) => withTimeout(
          what,
          timeout,
          async () => {
            try {
              // nothing is simulated, signed or sent against a node that answers for another chain
              const chainId = await p.publicClient.getChainId()
              const want = p.walletClient.chain?.id
              if (want !== undefined && chainId !== want)
                throw new BaseError(`${what}: the RPC node serves chain ${chainId}, not chain ${want}; nothing was sent`, { code: 'CHAIN_ID_MISMATCH', retryable: true })
              const { request } = await p.publicClient.simulateContract({ ...call, account: p.walletClient.account } as Parameters<PublicClient['simulateContract']>[0])
              // the estimate is taken against the pending block; the mined block may take a costlier path (a settle
              // that accrues where the estimate accrued nothing), so leave headroom rather than run out of gas
              const gas = await p.publicClient.estimateContractGas({ ...call, account: p.walletClient.account } as Parameters<PublicClient['estimateContractGas']>[0])
              const hash = await p.walletClient.writeContract({ ...(request as object), gas: (gas * 13n) / 10n + 20_000n } as Parameters<typeof p.walletClient.writeContract>[0])
              log.info({ tx: hash, call: what }, 'transaction sent')
              faultPoint(`tx.${call.functionName}.sent`)
              const receipt = await p.publicClient.waitForTransactionReceipt({ hash, timeout })
              if (receipt.status !== 'success') throw new TxFailedError(what, hash)
              counter.inc({ function: call.functionName, outcome: 'success' })
              return receipt
            } catch (err) {
              const e = classifyRpcError(what, err)
              counter.inc({ function: call.functionName, outcome: e.code })
              throw e
            }
          },
          s,
        ))),
      )
      queue = run.catch(() => undefined)
      return run
    },
  }
}
