import { BaseError, type ReasonCode } from '../core/errors.js'

/**
 * How placement's failover treats a provisioning error: what went wrong (`kind`) and how much to block for a cooldown
 * (`scope`: this offer = provider+region+instance type, the whole region of the provider, or the whole provider).
 */
export type FailoverClass = {
  kind: 'capacity' | 'quota' | 'region-unavailable' | 'price-changed' | 'auth'
  scope: 'offer' | 'region' | 'provider'
}

/** A provisioning failure. `reason` is the refund code if it ends the request; `retryable` says if trying again may help. */
export class ProvisionError extends BaseError {
  override name = 'ProvisionError'
  /** Set when placement should try the next candidate instead of retrying this one (see FailoverClass). */
  readonly failover: FailoverClass | undefined
  constructor(
    message: string,
    p: { code?: string; reason?: ReasonCode; retryable?: boolean; details?: string[]; cause?: unknown; meta?: Record<string, unknown>; failover?: FailoverClass },
  ) {
    super(message, { code: p.code ?? p.reason ?? 'PROVISION_FAILED', reason: p.reason ?? 'PROVISION_FAILED', retryable: p.retryable ?? false, details: p.details, cause: p.cause, meta: p.failover ? { ...p.meta, failover: p.failover } : p.meta })
    this.failover = p.failover
  }
}

const KINDS: readonly string[] = ['capacity', 'quota', 'region-unavailable', 'price-changed', 'auth']
const SCOPES: readonly string[] = ['offer', 'region', 'provider']
const classOf = (x: unknown): FailoverClass | undefined => {
  const f = x as Partial<FailoverClass> | undefined
  return f && typeof f === 'object' && KINDS.includes(f.kind as string) && SCOPES.includes(f.scope as string) ? { kind: f.kind!, scope: f.scope! } : undefined
}

/**
 * The failover class of `err` or of an error in its cause chain, if any: a ProvisionError's `failover`, or a valid
 * `failover` / `meta.failover` on any other error (a class that is not one of the known kinds and scopes is none).
 */
export function failoverOf(err: unknown): FailoverClass | undefined {
  for (let e = err, i = 0; e && i < 10; e = (e as { cause?: unknown }).cause, i++) {
    const c = classOf((e as { failover?: unknown }).failover) ?? (e instanceof BaseError ? classOf(e.meta?.failover) : undefined)
    if (c) return c
  }
  return undefined
}

/** The target cannot be reached (network, API down): always retryable. */
export class TargetUnreachableError extends BaseError {
  override name = 'TargetUnreachableError'
  constructor(target: string, cause?: unknown, details?: string[]) {
    super(`${target} is unreachable`, { code: 'TARGET_UNREACHABLE', retryable: true, reason: 'PROVISION_FAILED', cause, details })
  }
}
