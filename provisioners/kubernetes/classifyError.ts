/**
 * Classify what `@kubernetes/client-node` throws by HTTP status code (ApiException.code) or socket error code —
 * never by message text: 5xx, 429, timeouts and connection failures are a retryable TargetUnreachableError;
 * 409 is a retryable ProvisionError (re-read and try again); 422 and other 4xx are final ProvisionErrors carrying the
 * API server's Status message. The HTTP status and Status reason stay in `meta` for callers that branch on 404/409.
 */
import { ApiException } from '@kubernetes/client-node'
import { AbortedError, BaseError, TimeoutError } from '../../core/errors.js'
import { ProvisionError, TargetUnreachableError } from '../errors.js'

/** The parts of a Kubernetes `Status` object this module reads. */
export type KubernetesStatus = {
  kind?: string
  status?: string
  message?: string
  reason?: string
  code?: number
  details?: { name?: string; kind?: string; group?: string; causes?: { reason?: string; message?: string; field?: string }[] }
}

/** Parse an ApiException body (string or object) as a Status; undefined when it is not one. */
export function statusOf(body: unknown): KubernetesStatus | undefined {
  let b = body
  if (typeof b === 'string') {
    try {
      b = JSON.parse(b)
    } catch {
      return undefined
    }
  }
  if (b && typeof b === 'object' && (b as { kind?: unknown }).kind === 'Status') return b as KubernetesStatus
  return undefined
}

/** HTTP status carried by a classified error (or an ApiException), if any. */
export function httpStatusOf(err: unknown): number | undefined {
  if (err instanceof ApiException) return err.code
  if (err instanceof BaseError && typeof err.meta.httpStatus === 'number') return err.meta.httpStatus
  return undefined
}

const tlsCodes = /^(CERT_|ERR_TLS_|ERR_SSL_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_(GET|VERIFY)_|ERR_OSSL)/

function socketCode(err: unknown): string | undefined {
  for (let cur: unknown = err, i = 0; cur && i < 5; cur = (cur as { cause?: unknown }).cause, i++) {
    const e = cur as { code?: unknown; errno?: unknown }
    if (typeof e.code === 'string') return e.code
    if (typeof e.errno === 'string') return e.errno
  }
  return undefined
}

/** Turn anything a Kubernetes call threw into a BaseError; `target` names the cluster, `what` the call. */
export function classifyKubernetesError(err: unknown, target: string, what: string): BaseError {
  if (err instanceof AbortedError) return err
  if (err instanceof TimeoutError) return new TargetUnreachableError(target, err, [`${what}: ${err.shortMessage}`])
  if (err instanceof BaseError) return err
  if (err instanceof ApiException) {
    const code = err.code
    const st = statusOf(err.body)
    const message = st?.message ?? `HTTP ${code}`
    const meta = { httpStatus: code, statusReason: st?.reason, target, call: what }
    const details = [`${what}: HTTP ${code}${st?.reason ? ` ${st.reason}` : ''}: ${message}`]
    for (const c of st?.details?.causes ?? []) details.push(`${c.field ?? '(object)'}: ${c.message ?? c.reason ?? ''}`)
    if (code >= 500 || code === 429) return new TargetUnreachableError(target, err, details)
    if (code === 409) return new ProvisionError(`${target}: conflict on ${what}`, { retryable: true, details, cause: err, meta })
    if (code === 422) return new ProvisionError(`${target}: ${message}`, { retryable: false, details, cause: err, meta })
    return new ProvisionError(`${target}: ${what} failed with HTTP ${code}`, { retryable: false, details, cause: err, meta })
  }
  const code = socketCode(err)
  const msg = err instanceof Error ? err.message : String(err)
  if (code && tlsCodes.test(code)) {
    return new ProvisionError(`${target}: TLS verification of the API server failed`, { retryable: false, details: [`${what}: ${code}`], cause: err, meta: { target, call: what } })
  }
  return new TargetUnreachableError(target, err, [`${what}: ${code ?? msg.split('\n')[0]}`])
}
