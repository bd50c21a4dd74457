import { BaseError, type ReasonCode } from '../core/errors.js'

/** A provisioning failure. `reason` is the refund code if it ends the request; `retryable` says if trying again may help. */
export class ProvisionError extends BaseError {
  override name = 'ProvisionError'
  constructor(
    message: string,
    p: { code?: string; reason?: ReasonCode; retryable?: boolean; details?: string[]; cause?: unknown; meta?: Record<string, unknown> },
  ) {
    super(message, { code: p.code ?? p.reason ?? 'PROVISION_FAILED', reason: p.reason ?? 'PROVISION_FAILED', retryable: p.retryable ?? false, details: p.details, cause: p.cause, meta: p.meta })
  }
}

/** The target cannot be reached (network, API down): always retryable. */
export class TargetUnreachableError extends BaseError {
  override name = 'TargetUnreachableError'
  constructor(target: string, cause?: unknown, details?: string[]) {
    super(`${target} is unreachable`, { code: 'TARGET_UNREACHABLE', retryable: true, reason: 'PROVISION_FAILED', cause, details })
  }
}
