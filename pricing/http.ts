/**
 * The one way pricing sources fetch: global fetch with an AbortSignal, a timeout and a body size limit, errors as
 * PriceSourceFetchError.
 */
import { AbortedError, BaseError } from '../core/errors.js'
import { withTimeout } from '../core/retry.js'
import { PriceSourceFetchError } from './errors.js'

export type FetchParameters = {
  url: string
  signal?: AbortSignal | undefined
  /** Whole request including the body, ms. Default 60 000. */
  timeoutMs?: number | undefined
  headers?: Record<string, string>
  /** Largest body accepted, bytes; a larger one is a non-retryable fetch error. Default 256 MiB. */
  maxBytes?: number | undefined
}

/** Default `maxBytes`: well above the largest source (Vantage's instances.json, ~100 MB). */
export const DEFAULT_MAX_BODY_BYTES = 256 * 1024 * 1024

/** The body as UTF-8 text (BOM dropped, as Response.text() does), read no further than `maxBytes`. */
async function readBody(source: string, url: string, res: Response, maxBytes: number): Promise<string> {
  const tooLarge = () => new PriceSourceFetchError(source, url, `body larger than ${maxBytes} bytes (maxBytes)`, { retryable: false })
  const declared = Number(res.headers.get('content-length') ?? NaN)
  if (declared > maxBytes) {
    await res.body?.cancel().catch(() => undefined)
    throw tooLarge()
  }
  if (!res.body) return ''
  const chunks: Uint8Array[] = []
  let size = 0
  const reader = res.body.getReader()
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    size += value.byteLength
    if (size > maxBytes) {
      await reader.cancel().catch(() => undefined)
      throw tooLarge()
    }
    chunks.push(value)
  }
  return new TextDecoder().decode(Buffer.concat(chunks, size))
}

/** GET `url` and return the body as text; non-2xx statuses, network failures and timeouts throw. */
export async function fetchText(source: string, p: FetchParameters): Promise<string> {
  const timeoutMs = p.timeoutMs ?? 60_000
  try {
    return await withTimeout(
      `GET ${source}`,
      timeoutMs,
      async (signal) => {
        const res = await fetch(p.url, {
          signal,
          headers: { accept: 'application/json, text/csv, text/html;q=0.9, */*;q=0.5', 'user-agent': 'blueprint-operator-pricing', ...p.headers },
          redirect: 'follow',
        })
        if (!res.ok) {
          await res.body?.cancel().catch(() => undefined)
          throw new PriceSourceFetchError(source, p.url, `HTTP ${res.status} ${res.statusText}`, { status: res.status })
        }
        return await readBody(source, p.url, res, p.maxBytes ?? DEFAULT_MAX_BODY_BYTES)
      },
      p.signal,
    )
  } catch (err) {
    if (err instanceof BaseError) {
      if (err instanceof PriceSourceFetchError || err instanceof AbortedError) throw err
      throw new PriceSourceFetchError(source, p.url, err.shortMessage, { cause: err, retryable: err.retryable })
    }
    throw new PriceSourceFetchError(source, p.url, err instanceof Error ? err.message : String(err), { cause: err })
  }
}

/** GET `url` and parse JSON; a body that is not JSON is a non-retryable fetch error. */
export async function fetchJson(source: string, p: FetchParameters): Promise<unknown> {
  const text = await fetchText(source, p)
  try {
    return JSON.parse(text)
  } catch (err) {
    throw new PriceSourceFetchError(source, p.url, `body is not JSON (${text.slice(0, 60).replace(/\s+/g, ' ')}...)`, { cause: err, retryable: false })
  }
}
