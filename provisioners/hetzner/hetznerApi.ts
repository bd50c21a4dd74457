/**
 * A small Hetzner Cloud API client over undici: bearer token (never logged), JSON, per-call timeout and AbortSignal,
 * backoff on 429 honouring RateLimit-Reset / Retry-After, errors classified by the API's error code.
 */
import { request } from 'undici'
import { AbortedError, TimeoutError, type BaseError } from '../../core/errors.js'
import type { Secret } from '../../config/secrets.js'
import { TargetUnreachableError } from '../errors.js'
import { callApi, retryAfterMs } from '../cloud/callApi.js'
import { CloudRateLimitedError, cloudApiError, failoverError } from '../cloud/errors.js'

export type HetznerApi = {
  call<T>(method: 'GET' | 'POST' | 'DELETE' | 'PUT', path: string, body: unknown, signal: AbortSignal): Promise<T>
  /** Every item of a paginated list (`key` is the list's field, e.g. "servers"). */
  list<T>(path: string, key: string, signal: AbortSignal): Promise<T[]>
}

/** The Hetzner API error code carried by an error we threw (e.g. "uniqueness_error"), if any. */
export function hetznerErrorCode(err: unknown): string | undefined {
  const c = (err as BaseError)?.meta?.providerCode
  return typeof c === 'string' ? c : undefined
}

/** Map one error answer (status, `error.code`) to the error we throw. */
export function classifyHetznerError(status: number, code: string, message: string, headers: Record<string, string | string[] | undefined>): Error {
  const msg = `${code}: ${message}`.slice(0, 300)
  const h = (k: string) => {
    const v = headers[k]
    return Array.isArray(v) ? v[0] : v
  }
  if (code === 'rate_limit_exceeded' || status === 429) {
    const reset = h('ratelimit-reset')
    const after = retryAfterMs(h('retry-after')) ?? (reset && /^\d+$/.test(reset) ? Math.max(0, Number(reset) * 1000 - Date.now()) : undefined)
    return new CloudRateLimitedError('hetzner', after)
  }
  if (code === 'resource_unavailable' || code === 'placement_error') return failoverError('hetzner', { kind: 'capacity', scope: 'offer' }, msg, { providerCode: code })
  if (code === 'resource_limit_exceeded' || code === 'server_limit_exceeded' || code === 'volume_limit_exceeded') return failoverError('hetzner', { kind: 'quota', scope: 'provider' }, msg, { providerCode: code })
  if (code === 'unauthorized' || code === 'forbidden' || code === 'token_readonly' || status === 401 || status === 403) return failoverError('hetzner', { kind: 'auth', scope: 'provider' }, msg, { providerCode: code })
  if (code === 'location_disabled' || code === 'maintenance') return failoverError('hetzner', { kind: 'region-unavailable', scope: 'region' }, msg, { providerCode: code })
  if (status >= 500 || code === 'conflict' || code === 'locked' || code === 'timeout' || code === 'server_error' || code === 'service_error') return new TargetUnreachableError('hetzner API', undefined, [msg])
  return cloudApiError('hetzner', msg, { providerCode: code, status })
}

/** Create a client for `endpoint` (e.g. "https://api.hetzner.cloud/v1"). */
export function createHetznerApi(p: { endpoint: string; token: Secret; timeoutMs?: number }): HetznerApi {
  const base = p.endpoint.replace(/\/+$/, '')
  async function once<T>(method: string, path: string, body: unknown, signal: AbortSignal): Promise<T> {
    let res
    try {
      res = await request(`${base}${path}`, {
        method: method as 'GET',
        headers: { authorization: `Bearer ${p.token.reveal()}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal,
      })
    } catch (err) {
      if (signal.aborted) throw signal.reason instanceof TimeoutError ? signal.reason : new AbortedError(`hetzner ${method} ${path}`, signal.reason)
      throw new TargetUnreachableError('hetzner API', err, [`${method} ${path}: ${(err as Error).message}`])
    }
    const text = await res.body.text()
    if (res.statusCode >= 200 && res.statusCode < 300) return (text ? JSON.parse(text) : {}) as T
    let code = `http_${res.statusCode}`
    let message = ''
    try {
      const e = (JSON.parse(text) as { error?: { code?: string; message?: string } }).error
      code = e?.code ?? code
      message = e?.message ?? ''
    } catch {
      // not JSON: keep the status
    }
    throw classifyHetznerError(res.statusCode, code, message, res.headers)
  }
  const api: HetznerApi = {
    call: (method, path, body, signal) => callApi(`hetzner ${method} ${path.split('?')[0]}`, (s) => once(method, path, body, s), { signal, timeoutMs: p.timeoutMs }),
    async list<T>(path: string, key: string, signal: AbortSignal): Promise<T[]> {
      const out: T[] = []
      for (let page: number | null = 1; page; ) {
        const sep = path.includes('?') ? '&' : '?'
        const r: Record<string, unknown> & { meta?: { pagination?: { next_page?: number | null } } } = await api.call('GET', `${path}${sep}page=${page}&per_page=50`, undefined, signal)
        out.push(...((r[key] as T[]) ?? []))
        page = r.meta?.pagination?.next_page ?? null
      }
      return out
    },
  }
  return api
}

