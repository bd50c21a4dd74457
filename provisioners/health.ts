/**
 * HTTP health probes shared by the provisioners: one probe, and a wait-until-healthy loop.
 */
import { request } from 'undici'
import { AbortedError } from '../core/errors.js'
import { sleep } from '../core/retry.js'

export type HttpProbeParameters = {
  /** Full URL to GET, e.g. http://127.0.0.1:41000/healthz. */
  url: string
  /** Per-probe timeout in ms. Default 2_000. */
  timeoutMs?: number
  signal?: AbortSignal
}

export type HttpProbeResult = {
  /** True for a 2xx or 3xx answer. */
  ok: boolean
  status?: number
  /** Error code or message when no answer came (ECONNREFUSED, timeout, ...). */
  error?: string
}

/** GET `url` once; never throws except AbortedError when `signal` aborts. */
export async function probeHttp(p: HttpProbeParameters): Promise<HttpProbeResult> {
  if (p.signal?.aborted) throw new AbortedError('health probe', p.signal.reason)
  const timeoutMs = p.timeoutMs ?? 2_000
  const timeout = AbortSignal.timeout(timeoutMs)
  const signal = p.signal ? AbortSignal.any([p.signal, timeout]) : timeout
  try {
    // reset: no pooled keep-alive socket to a workload that may be stopped any moment
    const res = await request(p.url, { method: 'GET', signal, reset: true, headersTimeout: timeoutMs, bodyTimeout: timeoutMs })
    await res.body.dump().catch(() => undefined)
    return { ok: res.statusCode >= 200 && res.statusCode < 400, status: res.statusCode }
  } catch (err) {
    if (p.signal?.aborted) throw new AbortedError('health probe', p.signal.reason)
    if (timeout.aborted) return { ok: false, error: `no answer within ${timeoutMs} ms` }
    const e = err as { code?: string; cause?: { code?: string }; message?: string }
    return { ok: false, error: e.cause?.code ?? e.code ?? e.message ?? String(err) }
  }
}

export type WaitForHealthyParameters = HttpProbeParameters & {
  /** Give up after this many ms. */
  deadlineMs: number
  /** Pause between probes in ms. Default 150, growing to 1_000. */
  intervalMs?: number
  /** Checked before each probe; when it returns false the wait ends at once (the workload exited). */
  stillAlive?: () => boolean | Promise<boolean>
}

export type WaitForHealthyReturnType = HttpProbeResult & {
  /** True when `stillAlive` said the workload is gone. */
  exited?: boolean
}

/** Probe until healthy, the deadline passes or the workload exits; throws only AbortedError. */
export async function waitForHealthy(p: WaitForHealthyParameters): Promise<WaitForHealthyReturnType> {
  const end = Date.now() + p.deadlineMs
  let interval = p.intervalMs ?? 150
  let last: HttpProbeResult = { ok: false, error: 'not probed' }
  for (;;) {
    if (p.signal?.aborted) throw new AbortedError('health wait', p.signal.reason)
    if (p.stillAlive && !(await p.stillAlive())) return { ...last, ok: false, exited: true }
    const left = end - Date.now()
    last = await probeHttp({ url: p.url, timeoutMs: Math.max(100, Math.min(p.timeoutMs ?? 2_000, left)), signal: p.signal })
    if (last.ok) return last
    if (Date.now() + interval > end) return last
    await sleep(interval, p.signal)
    interval = Math.min(1_000, Math.round(interval * 1.5))
  }
}
