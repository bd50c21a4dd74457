/**
 * The few reads and transactions the operator makes against BlueprintRegistry and ServiceEscrow. Transactions are
 * sent one at a time (one nonce in flight), wait for their receipt, and are idempotent: the state is read first, and
 * the reverts that mean "already done" are answered with 'already' instead of an error.
 */
import { decodeEventLog, type Account, type Address, type Chain, type Hex, type PublicClient, type TransactionReceipt, type Transport, type WalletClient } from 'viem'
import type { Common } from '../../core/common.js'
import type { ReasonCode } from '../../core/errors.js'
import { retry, withTimeout } from '../../core/retry.js'
import { blueprintRegistryAbi, serviceEscrowAbi, serviceStates, type ServiceState } from '../contracts/abi.js'
import { decodeBlueprint, type Blueprint } from './blueprint.js'
import { ServiceEndedError, ServiceUnknownError, TxRevertedError, classifyRpcError } from './errors.js'
import { reasonToBytes32 } from './reason.js'
import { withScopedSignal } from './signal.js'
import { createTxSender } from './tx.js'

export type { ServiceState }

/** A service as stored in the escrow. Amounts in token base units, times in unix seconds. */
export type OnchainService = {
  id: bigint
  customer: Address
  operator: Address
  blueprintId: bigint
  tier: number
  ratePerHour: bigint
  /** Unserved money held for the customer, as of `settledAt`. */
  balance: bigint
  /** Served money not yet withdrawn, as of `settledAt`. */
  earned: bigint
  settledAt: bigint
  /** Activation time + TTL (0 before activation). */
  endsAt: bigint
  ttl: bigint
  state: Exclude<ServiceState, 'none'>
}

export type EscrowClientParameters = {
  publicClient: PublicClient
  /** The operator's wallet (its account is the services' operator). */
  walletClient: WalletClient<Transport, Chain | undefined, Account>
  escrow: Address
  registry: Address
  /** Timeout of a transaction from simulation to receipt, ms. Default 60_000. */
  txTimeoutMs?: number
  /** Timeout of a read, ms. Default 15_000. */
  readTimeoutMs?: number
}

export type EscrowClient = {
  /** The blueprint, or undefined when no blueprint has this id. */
  getBlueprint(id: bigint, signal?: AbortSignal): Promise<Blueprint | undefined>
  /** The service, or undefined when no service has this id. */
  getService(id: bigint, signal?: AbortSignal): Promise<OnchainService | undefined>
  /**
   * Many services in one eth_call (`getServices`), in the order of `ids`; undefined where no service has the id.
   * `blockNumber` reads as of that block (e.g. the follower's cursor, to compare with the facts intake applied).
   * Keep a call to a few hundred ids (the node's eth_call gas cap).
   */
  getServices(ids: readonly bigint[], signal?: AbortSignal, blockNumber?: bigint): Promise<Array<OnchainService | undefined>>
  /** Unix time up to which the service is paid; 0 when it is not active. */
  paidUntil(id: bigint, signal?: AbortSignal): Promise<bigint>
  /** Start the service's clock; 'already' when it is active. Throws SERVICE_ENDED on a terminated or closed service. */
  activate(id: bigint, signal?: AbortSignal): Promise<Hex | 'already'>
  /** Withdraw what the operator has earned; 'nothing' when that is zero. */
  withdraw(id: bigint, signal?: AbortSignal): Promise<{ hash: Hex; amount: bigint } | 'nothing'>
  /** Close the service: earned to the operator, the rest to the customer with `reason`; 'already' when ended. */
  refund(id: bigint, reason: ReasonCode, signal?: AbortSignal): Promise<{ hash: Hex } | 'already'>
}

/** Create the operator's client of the escrow and the registry. */
export function createEscrowClient(common: Common, p: EscrowClientParameters): EscrowClient {
  const readTimeout = p.readTimeoutMs ?? 15_000

  const read = <T>(what: string, fn: () => Promise<T>, signal?: AbortSignal): Promise<T> =>
    withScopedSignal([signal, common.signal], (s) =>
      retry(
        () =>
          withScopedSignal([s], (one) => withTimeout(what, readTimeout, () => fn(), one)).catch((err) => {
            throw classifyRpcError(what, err)
          }),
        { attempts: 3, baseMs: 200, signal: s },
      ),
    )

  const tx = createTxSender(common, { publicClient: p.publicClient, walletClient: p.walletClient, timeoutMs: p.txTimeoutMs, countTransactions: true })
  const send = (functionName: 'activate' | 'withdraw' | 'refund', args: readonly unknown[], signal?: AbortSignal) =>
    tx.send({ address: p.escrow, abi: serviceEscrowAbi, functionName, args }, signal)

  type Raw = Awaited<ReturnType<typeof readOne>>
  const readOne = (id: bigint, signal?: AbortSignal) =>
    read('getService', () => p.publicClient.readContract({ address: p.escrow, abi: serviceEscrowAbi, functionName: 'getService', args: [id] }), signal)
  const getService = async (id: bigint, signal?: AbortSignal): Promise<OnchainService | undefined> => toService(id, await readOne(id, signal))
  const toService = (id: bigint, s: Raw): OnchainService | undefined => {
    const state = serviceStates[s.state]
    if (state === undefined || state === 'none') return undefined
    return {
      id,
      customer: s.customer,
      operator: s.operator,
      blueprintId: s.blueprintId,
      tier: s.tier,
      ratePerHour: s.ratePerHour,
      balance: s.balance,
      earned: s.earned,
      settledAt: s.settledAt,
      endsAt: s.endsAt,
      ttl: s.ttl,
      state,
    }
  }
  const mustGet = async (id: bigint, signal?: AbortSignal) => {
    const s = await getService(id, signal)
    if (!s) throw new ServiceUnknownError(id)
    return s
  }
  const isRevert = (err: unknown, name: string) => err instanceof TxRevertedError && err.errorName === name

  return {
    async getBlueprint(id, signal) {
      const exists = await read('exists', () => p.publicClient.readContract({ address: p.registry, abi: blueprintRegistryAbi, functionName: 'exists', args: [id] }), signal)
      if (!exists) return undefined
      const raw = await read('getBlueprint', () => p.publicClient.readContract({ address: p.registry, abi: blueprintRegistryAbi, functionName: 'getBlueprint', args: [id] }), signal)
      return decodeBlueprint({ id, ...raw })
    },
    getService,
    async getServices(ids, signal, blockNumber) {
      if (!ids.length) return []
      const raw = await read(
        'getServices',
        () => p.publicClient.readContract({ address: p.escrow, abi: serviceEscrowAbi, functionName: 'getServices', args: [[...ids]], ...(blockNumber !== undefined && { blockNumber }) }),
        signal,
      )
      return ids.map((id, i) => (raw[i] ? toService(id, raw[i]) : undefined))
    },
    paidUntil: (id, signal) =>
      read('paidUntil', () => p.publicClient.readContract({ address: p.escrow, abi: serviceEscrowAbi, functionName: 'paidUntil', args: [id] }), signal),
    async activate(id, signal) {
      const s = await mustGet(id, signal)
      if (s.state === 'active') return 'already'
      if (s.state !== 'requested') throw new ServiceEndedError(id, s.state, 'activate')
      try {
        return (await send('activate', [id], signal)).transactionHash
      } catch (err) {
        if (!isRevert(err, 'InvalidState')) throw err
        const now = await mustGet(id, signal)
        if (now.state === 'active') return 'already'
        throw new ServiceEndedError(id, now.state, 'activate')
      }
    },
    async withdraw(id, signal) {
      const s = await mustGet(id, signal)
      const accrued = await read('accruedNow', () => p.publicClient.readContract({ address: p.escrow, abi: serviceEscrowAbi, functionName: 'accruedNow', args: [id] }), signal)
      if (s.earned + accrued === 0n) return 'nothing'
      const receipt = await send('withdraw', [id], signal)
      const amount = withdrawnIn(receipt, p.escrow, id)
      return amount === 0n ? 'nothing' : { hash: receipt.transactionHash, amount }
    },
    async refund(id, reason, signal) {
      const s = await mustGet(id, signal)
      if (s.state === 'terminated' || s.state === 'closed') return 'already'
      try {
        const receipt = await send('refund', [id, reasonToBytes32(reason)], signal)
        return { hash: receipt.transactionHash }
      } catch (err) {
        if (isRevert(err, 'AlreadyEnded')) return 'already'
        throw err
      }
    },
  }
}

/** Sum of the Withdrawn events of `serviceId` in a receipt. */
function withdrawnIn(receipt: TransactionReceipt, escrow: Address, serviceId: bigint): bigint {
  let total = 0n
  for (const l of receipt.logs) {
    if (l.address.toLowerCase() !== escrow.toLowerCase()) continue
    try {
      const e = decodeEventLog({ abi: serviceEscrowAbi, data: l.data, topics: l.topics })
      if (e.eventName === 'Withdrawn' && e.args.serviceId === serviceId) total += e.args.amount
    } catch {
      // other events of the same transaction
    }
  }
  return total
}
