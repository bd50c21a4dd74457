/**
 * The store's refusals and failures, each with its stable code (docs/errors.md).
 */
import { BaseError } from '../../core/errors.js'

/** The state cannot be read as state: left as it is, never overwritten. */
export function stateCorrupt(what: string, cause?: unknown, details?: string[]): BaseError {
  return new BaseError(what, {
    code: 'STATE_CORRUPT',
    details: details ?? ['restore it from a backup, or move it aside to rebuild state from the chain'],
    ...(cause !== undefined && { cause }),
  })
}

/** The state belongs to another operator id or chain. */
export function stateMismatch(where: string, found: { operatorId: string; chainId: number }, want: { operatorId: string; chainId: number }): BaseError {
  return new BaseError(`${where} belongs to operator ${found.operatorId} on chain ${found.chainId}`, {
    code: 'STATE_MISMATCH',
    details: [`this daemon is operator ${want.operatorId} on chain ${want.chainId}; point operator.data_dir (or [store] url) elsewhere`],
  })
}

/** A group commit could not be written: every update of the batch fails, memory and database keep the previous state. */
export function writeFailed(cause: unknown): BaseError {
  return new BaseError('could not persist state', { code: 'STATE_WRITE_FAILED', retryable: true, cause })
}

/** The database server cannot be reached or refused the connection. */
export function storeUnavailable(where: string, cause: unknown): BaseError {
  return new BaseError(`the state database ${where} is unreachable`, {
    code: 'STORE_UNAVAILABLE',
    retryable: true,
    details: ['check [store] url, the server and its credentials; the daemon retries at its next start'],
    cause,
  })
}
