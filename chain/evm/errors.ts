/**
 * Errors of the EVM side and the one place where viem's errors are classified (by class and JSON-RPC code, never by
 * message text). Codes: RPC_UNAVAILABLE (retryable), RPC_REJECTED, MALFORMED_EVENT, TX_REVERTED, TX_FAILED,
 * SERVICE_UNKNOWN, SERVICE_ENDED, CHAIN_MOVED (retryable), ANVIL_START_FAILED (anvil.ts).
 */
import {
  BaseError as ViemBaseError,
  BlockNotFoundError,
  ChainMismatchError,
  ContractFunctionRevertedError,
  HttpRequestError,
  InternalRpcError,
  LimitExceededRpcError,
  NonceTooLowError,
  ResourceUnavailableRpcError,
  RpcError,
  RpcRequestError,
  SocketClosedError,
  TimeoutError as ViemTimeoutError,
  TransactionReceiptNotFoundError,
  WaitForTransactionReceiptTimeoutError,
  WebSocketRequestError,
} from 'viem'
import { AbortedError, BaseError, walk } from '../../core/errors.js'

/** The node could not be reached or answered with a transient failure; retrying may help. */
export class RpcUnavailableError extends BaseError {
  override name = 'RpcUnavailableError'
  constructor(what: string, cause: unknown) {
    super(`RPC call ${what} failed`, { code: 'RPC_UNAVAILABLE', retryable: true, cause })
  }
}

/** The node rejected the request for good (bad parameters, method unknown, unauthorized). */
export class RpcRejectedError extends BaseError {
  override name = 'RpcRejectedError'
  constructor(what: string, cause: unknown) {
    super(`RPC call ${what} was rejected`, { code: 'RPC_REJECTED', retryable: false, cause })
  }
}

/** A log from a watched contract that does not decode into a ChainEvent. */
export class MalformedEventError extends BaseError {
  override name = 'MalformedEventError'
  constructor(details: string[], meta: Record<string, unknown>, cause?: unknown) {
    super('log does not decode into a ChainEvent', { code: 'MALFORMED_EVENT', retryable: false, details, meta, cause })
  }
}

/** A contract call reverted; `errorName` and `args` are the decoded custom error, when known. */
export class TxRevertedError extends BaseError {
  override name = 'TxRevertedError'
  readonly errorName: string | undefined
  readonly args: readonly unknown[]
  constructor(what: string, errorName: string | undefined, args: readonly unknown[], cause?: unknown) {
    super(`${what} reverted${errorName ? ` with ${errorName}` : ''}`, {
      code: 'TX_REVERTED',
      retryable: false,
      details: errorName ? [`error: ${errorName}(${args.map(String).join(', ')})`] : [],
      cause,
    })
    this.errorName = errorName
    this.args = args
  }
}

/** A transaction was mined but failed (status reverted) without a decodable reason. */
export class TxFailedError extends BaseError {
  override name = 'TxFailedError'
  constructor(what: string, hash: string) {
    super(`${what} was mined but reverted`, { code: 'TX_FAILED', retryable: false, details: [`transaction: ${hash}`], meta: { hash } })
  }
}

/** The chain changed while a block range was being read; the range is read again. */
export class ChainMovedError extends BaseError {
  override name = 'ChainMovedError'
  constructor(details: string[]) {
    super('the chain changed while a block range was read', { code: 'CHAIN_MOVED', retryable: true, details })
  }
}

/** The escrow has no service with this id. */
export class ServiceUnknownError extends BaseError {
  override name = 'ServiceUnknownError'
  constructor(serviceId: bigint) {
    super(`service ${serviceId} does not exist on chain`, { code: 'SERVICE_UNKNOWN', retryable: false, meta: { serviceId: serviceId.toString() } })
  }
}

/** The service was terminated or closed; the operation no longer applies. */
export class ServiceEndedError extends BaseError {
  override name = 'ServiceEndedError'
  constructor(serviceId: bigint, state: string, what: string) {
    super(`cannot ${what} service ${serviceId}: it is ${state}`, {
      code: 'SERVICE_ENDED',
      retryable: false,
      meta: { serviceId: serviceId.toString(), state },
    })
  }
}

/** JSON-RPC codes that mean "try again later". */
const transientRpcCodes = new Set([
  InternalRpcError.code,
  LimitExceededRpcError.code,
  ResourceUnavailableRpcError.code,
  -32000, // generic server error: nodes use it for overload and for "header not found" while syncing
  429,
])

/** True when a raw viem error (or its causes) says the call may succeed if repeated. */
export function isTransientRpcError(err: unknown): boolean {
  const hit = walk(err, (e) => {
    if (e instanceof HttpRequestError) return e.status === undefined || e.status >= 500 || e.status === 408 || e.status === 429
    if (e instanceof ViemTimeoutError || e instanceof SocketClosedError || e instanceof WebSocketRequestError) return true
    if (e instanceof WaitForTransactionReceiptTimeoutError || e instanceof TransactionReceiptNotFoundError) return true
    if (e instanceof NonceTooLowError) return true
    // a node behind a load balancer may not have a block its sibling just reported
    if (e instanceof BlockNotFoundError) return true
    if (e instanceof RpcError || e instanceof RpcRequestError) return transientRpcCodes.has(e.code)
    return false
  })
  return hit !== undefined
}

/** The decoded custom error of a revert, if `err` is (or wraps) one. */
export function revertOf(err: unknown): { errorName: string | undefined; args: readonly unknown[] } | undefined {
  const hit = walk(err, (e) => e instanceof ContractFunctionRevertedError)
  if (!(hit instanceof ContractFunctionRevertedError)) return undefined
  return { errorName: hit.data?.errorName ?? hit.reason, args: hit.data?.args ?? [] }
}

/**
 * Turn anything an RPC call threw into one of ours: our own errors pass through, reverts become TxRevertedError,
 * transient failures RpcUnavailableError, everything else from viem RpcRejectedError.
 */
export function classifyRpcError(what: string, err: unknown): BaseError {
  if (err instanceof BaseError) return err
  const revert = revertOf(err)
  if (revert) return new TxRevertedError(what, revert.errorName, revert.args, err)
  if (isTransientRpcError(err)) return new RpcUnavailableError(what, err)
  // the node answers for another chain (swapped behind a load balancer, a wrong URL): nothing was signed for it, and
  // a later attempt may reach the right chain — never a reason to roll a service back
  if (walk(err, (e) => e instanceof ChainMismatchError))
    return new BaseError(`${what}: the RPC node serves another chain; nothing was sent`, { code: 'CHAIN_ID_MISMATCH', retryable: true, cause: err })
  if (err instanceof ViemBaseError) return new RpcRejectedError(what, err)
  if (err instanceof Error && err.name === 'AbortError') return new AbortedError(what, err)
  // unknown shapes (a TypeError from fetch, a socket reset) are treated as transport trouble
  return new RpcUnavailableError(what, err)
}
