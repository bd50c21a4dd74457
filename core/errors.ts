/**
 * Errors: one BaseError with a stable `code`, a `retryable` flag, detail lines and a wrapped `cause`.
 * Every code is documented once in docs/errors.md (a test fails when one is missing).
 */

/** Reason codes written on chain with refunds and rejections. Stable forever; documented in docs/errors.md. */
export const ReasonCodes = [
  'MALFORMED_REQUEST',
  'UNKNOWN_BLUEPRINT',
  'REQUIREMENTS_ABOVE_CEILING',
  'NO_FEASIBLE_OFFER',
  'MARGIN_TOO_LOW',
  'ARTIFACT_UNREACHABLE',
  'ARTIFACT_DIGEST_MISMATCH',
  'PROVISION_FAILED',
  'UNHEALTHY',
  'OPERATOR_DRAINING',
  'TTL_REACHED',
  'CUSTOMER_TERMINATED',
  'SERVICE_VANISHED',
  'NO_CAPACITY',
  'OPERATOR_STOPPED',
] as const
export type ReasonCode = (typeof ReasonCodes)[number]

export function isReasonCode(x: string): x is ReasonCode {
  return (ReasonCodes as readonly string[]).includes(x)
}

export type BaseErrorParameters = {
  /** Stable machine-readable code (SCREAMING_SNAKE). */
  code: string
  /** Whether retrying the same call may succeed. Default false. */
  retryable?: boolean
  /** Extra lines shown under the short message. */
  details?: string[]
  /** Reason code to use if this error ends a customer's request. */
  reason?: ReasonCode
  cause?: unknown
  /** Structured, non-secret context (ids, paths) for logs. */
  meta?: Record<string, unknown>
}

/** Strip `user:password@` from any URL inside a message. */
export function redactUrl(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/)[^/\s:@]+(:[^/\s@]*)?@/gi, '$1***@')
}

export class BaseError extends Error {
  override name = 'BaseError'
  readonly code: string
  readonly retryable: boolean
  readonly shortMessage: string
  readonly details: string[]
  readonly reason: ReasonCode | undefined
  readonly meta: Record<string, unknown>

  constructor(shortMessage: string, p: BaseErrorParameters) {
    const short = redactUrl(shortMessage)
    const details = (p.details ?? []).map(redactUrl)
    const causeMsg = p.cause instanceof Error ? redactUrl(p.cause.message) : undefined
    const lines = [short, ...details.map((d) => `  ${d}`)]
    if (causeMsg && !details.length) lines.push(`  cause: ${causeMsg.split('\n')[0]}`)
    lines.push(`  code: ${p.code}`)
    super(lines.join('\n'), p.cause !== undefined ? { cause: p.cause } : undefined)
    this.code = p.code
    this.retryable = p.retryable ?? false
    this.shortMessage = short
    this.details = details
    this.reason = p.reason
    this.meta = p.meta ?? {}
  }

  /** Follow the `cause` chain; returns the first error matching `fn`, or the deepest cause. */
  walk(fn?: (err: unknown) => boolean): unknown {
    return walk(this, fn)
  }
}

export function walk(err: unknown, fn?: (err: unknown) => boolean): unknown {
  let cur: unknown = err
  const seen = new Set<unknown>()
  while (cur && !seen.has(cur)) {
    seen.add(cur)
    if (fn?.(cur)) return cur
    const next = (cur as { cause?: unknown }).cause
    if (!next) break
    cur = next
  }
  return fn ? undefined : cur
}

/** True when the error (or one it wraps) says retrying may help. */
export function isRetryable(err: unknown): boolean {
  const found = walk(err, (e) => e instanceof BaseError)
  if (found instanceof BaseError) return found.retryable
  return false
}

/** Reason code carried by an error or its causes, if any. */
export function reasonOf(err: unknown, fallback: ReasonCode): ReasonCode {
  const found = walk(err, (e) => e instanceof BaseError && e.reason !== undefined)
  return found instanceof BaseError && found.reason ? found.reason : fallback
}

export class TimeoutError extends BaseError {
  override name = 'TimeoutError'
  constructor(what: string, ms: number, cause?: unknown) {
    super(`${what} timed out after ${ms} ms`, { code: 'TIMEOUT', retryable: true, cause })
  }
}

export class AbortedError extends BaseError {
  override name = 'AbortedError'
  constructor(what: string, cause?: unknown) {
    super(`${what} was aborted`, { code: 'ABORTED', retryable: false, cause })
  }
}
