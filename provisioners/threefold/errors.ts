import { BaseError } from '../../core/errors.js'

/** An answer or a failure of the grid worker child; `code` is one of GridWorkerErrorCode or GRID_WORKER_*. */
export class GridWorkerError extends BaseError {
  override name = 'GridWorkerError'
  constructor(message: string, p: { code: string; retryable: boolean; op: string; cause?: unknown; failover?: { kind: string; scope: string } | undefined }) {
    super(message, {
      code: p.code,
      retryable: p.retryable,
      reason: 'PROVISION_FAILED',
      cause: p.cause,
      meta: { op: p.op, ...(p.failover && { failover: p.failover }) },
    })
  }
}
