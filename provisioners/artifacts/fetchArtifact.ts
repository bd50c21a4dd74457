/**
 * Download a native artifact over HTTP(S) into a content-addressed cache (`<cacheDir>/sha256/<hex>`), verifying its
 * sha256 before the file is ever made executable. A cached artifact is re-verified on every use.
 */
import { createHash, randomBytes } from 'node:crypto'
import { chmod, mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { Agent, request } from 'undici'
import type { Common } from '../../core/common.js'
import { AbortedError, redactUrl } from '../../core/errors.js'
import { ProvisionError } from '../errors.js'
import { createAddressPolicy } from './addressPolicy.js'
import { sha256File } from './sha256File.js'

export type FetchArtifactParameters = {
  /** http: or https: URL; credentials in it never reach a log or an error. */
  url: string
  /** Expected digest, 64 lowercase hex chars. */
  sha256: string
  /** Cache root; artifacts live in `<cacheDir>/sha256/<hex>`. */
  cacheDir: string
  /** Whole-download timeout in ms. Default 120_000. */
  timeoutMs?: number
  /** Size cap in bytes. Default 512 MiB. */
  maxBytes?: number
  /** Redirects followed at most. Default 5. */
  maxRedirects?: number
  /**
   * Hosts (names, addresses or CIDRs) that may be fetched although they are loopback, private, link-local or
   * otherwise non-public; everything else must resolve to public addresses only (checked on every redirect hop).
   */
  allowHosts?: readonly string[]
  signal?: AbortSignal
}

export type FetchArtifactReturnType = {
  /** Executable, verified file inside the cache. */
  path: string
  sha256: string
  bytes: number
  /** True when the verified cached copy was used without a download. */
  cached: boolean
}

const HEX64 = /^[0-9a-f]{64}$/

// an aborted undici body emits an error event; nobody listens to it any more
const discard = (body: { on(e: 'error', f: () => void): unknown; destroy(): unknown }) => {
  body.on('error', () => undefined)
  body.destroy()
}

// a daemon killed mid-download leaves its .part file behind; one older than any download could last is garbage
async function removeStaleParts(tmpDir: string, olderThanMs: number): Promise<void> {
  const now = Date.now()
  for (const name of await readdir(tmpDir).catch(() => [] as string[])) {
    if (!name.endsWith('.part')) continue
    const st = await stat(join(tmpDir, name)).catch(() => undefined)
    if (st && now - st.mtimeMs > olderThanMs) await rm(join(tmpDir, name), { force: true }).catch(() => undefined)
  }
}

/** Path of an artifact in the cache (whether or not it is there). */
export function artifactCachePath(cacheDir: string, sha256: string): string {
  return join(cacheDir, 'sha256', sha256)
}

const unreachable = (message: string, retryable: boolean, p: { code?: string; cause?: unknown; details?: string[]; meta?: Record<string, unknown> } = {}) =>
  new ProvisionError(message, { reason: 'ARTIFACT_UNREACHABLE', code: p.code ?? 'ARTIFACT_UNREACHABLE', retryable, cause: p.cause, details: p.details, meta: p.meta })

/** Fetch (or reuse from the cache) the artifact and return its verified, executable path. */
export async function fetchArtifact(common: Common, p: FetchArtifactParameters): Promise<FetchArtifactReturnType> {
  const log = common.logger
  const safeUrl = redactUrl(p.url)
  if (p.signal?.aborted) throw new AbortedError('artifact download', p.signal.reason)
  if (!HEX64.test(p.sha256)) {
    throw new ProvisionError(`artifact sha256 must be 64 lowercase hex characters`, { code: 'ARTIFACT_DIGEST_INVALID', reason: 'MALFORMED_REQUEST', meta: { url: safeUrl } })
  }
  let url: URL
  try {
    url = new URL(p.url)
  } catch (cause) {
    throw new ProvisionError(`artifact URL is not a valid URL`, { code: 'ARTIFACT_URL_INVALID', reason: 'MALFORMED_REQUEST', cause })
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ProvisionError(`artifact URL must be http: or https:, got ${url.protocol}`, { code: 'ARTIFACT_URL_INVALID', reason: 'MALFORMED_REQUEST', meta: { url: safeUrl } })
  }
  const policy = createAddressPolicy(p.allowHosts)
  // before the cache: a digest cached from an allowed URL must not make a refused URL look fine
  policy.checkUrl(url)

  const finalPath = artifactCachePath(p.cacheDir, p.sha256)
  const cached = await stat(finalPath).catch(() => undefined)
  if (cached?.isFile()) {
    const actual = await sha256File(finalPath, p.signal)
    if (actual === p.sha256) return { path: finalPath, sha256: p.sha256, bytes: cached.size, cached: true }
    // a tampered or corrupted cache entry is dropped and fetched again, never run
    log.warn({ path: finalPath, expected: p.sha256, actual }, 'cached artifact failed verification; downloading again')
    await rm(finalPath, { force: true })
  }

  const timeoutMs = p.timeoutMs ?? 120_000
  const maxBytes = p.maxBytes ?? 512 * 1024 * 1024
  const maxRedirects = p.maxRedirects ?? 5
  const timeout = AbortSignal.timeout(timeoutMs)
  const signal = p.signal ? AbortSignal.any([p.signal, timeout]) : timeout
  const tmpDir = join(p.cacheDir, 'tmp')
  await mkdir(tmpDir, { recursive: true })
  await removeStaleParts(tmpDir, 2 * timeoutMs)
  await mkdir(join(p.cacheDir, 'sha256'), { recursive: true })
  const tmpPath = join(tmpDir, `${p.sha256.slice(0, 16)}.${randomBytes(6).toString('hex')}.part`)
  const started = Date.now()

  const failure = (err: unknown): unknown => {
    if (p.signal?.aborted) return new AbortedError('artifact download', p.signal.reason)
    if (timeout.aborted) return unreachable(`artifact download timed out after ${timeoutMs} ms`, true, { code: 'ARTIFACT_TIMEOUT', meta: { url: safeUrl } })
    if (err instanceof ProvisionError) return err
    // the connect-time address check surfaces as the socket's error, sometimes wrapped
    if ((err as { cause?: unknown })?.cause instanceof ProvisionError) return (err as { cause: ProvisionError }).cause
    const e = err as { code?: string; cause?: { code?: string } }
    return unreachable(`artifact server unreachable`, true, { cause: err, details: [`url: ${safeUrl}`, `error: ${e.cause?.code ?? e.code ?? 'network error'}`], meta: { url: safeUrl } })
  }

  // every connection resolves through the policy's lookup: names that resolve to refused addresses never connect
  const dispatcher = new Agent({ connect: { lookup: policy.lookup } })
  try {
    let current = url
    for (let hop = 0; ; hop++) {
      policy.checkUrl(current)
      const res = await request(current, { method: 'GET', signal, headersTimeout: timeoutMs, bodyTimeout: timeoutMs, reset: true, dispatcher })
      const status = res.statusCode
      if (status >= 300 && status < 400 && status !== 304) {
        await res.body.dump().catch(() => undefined)
        const location = res.headers.location
        if (typeof location !== 'string') throw unreachable(`artifact server answered ${status} without a Location`, false, { meta: { url: safeUrl } })
        if (hop >= maxRedirects) throw unreachable(`artifact URL redirected more than ${maxRedirects} times`, false, { code: 'ARTIFACT_TOO_MANY_REDIRECTS', meta: { url: safeUrl } })
        const next = new URL(location, current)
        if (next.protocol !== 'http:' && next.protocol !== 'https:') throw unreachable(`artifact URL redirected to a ${next.protocol} URL`, false, { meta: { url: safeUrl } })
        current = next
        continue
      }
      if (status !== 200) {
        await res.body.dump().catch(() => undefined)
        // 5xx and 408/429 may pass; any other 4xx will not
        const retryable = status >= 500 || status === 408 || status === 429
        throw unreachable(`artifact server answered HTTP ${status}`, retryable, { details: [`url: ${redactUrl(current.href)}`], meta: { url: safeUrl, status } })
      }
      const declared = Number(res.headers['content-length'])
      if (Number.isFinite(declared) && declared > maxBytes) {
        discard(res.body)
        throw unreachable(`artifact is ${declared} bytes, above the ${maxBytes} byte cap`, false, { code: 'ARTIFACT_TOO_LARGE', meta: { url: safeUrl } })
      }
      const hash = createHash('sha256')
      let bytes = 0
      // 0o600: the download is neither executable nor readable by others until it is verified
      const fh = await open(tmpPath, 'wx', 0o600)
      try {
        for await (const chunk of res.body) {
          const buf = chunk as Buffer
          bytes += buf.length
          if (bytes > maxBytes) {
            discard(res.body)
            throw unreachable(`artifact is above the ${maxBytes} byte cap`, false, { code: 'ARTIFACT_TOO_LARGE', meta: { url: safeUrl } })
          }
          hash.update(buf)
          await fh.write(buf)
        }
        await fh.sync()
      } finally {
        await fh.close()
      }
      const actual = hash.digest('hex')
      if (actual !== p.sha256) {
        throw new ProvisionError(`artifact sha256 mismatch: expected ${p.sha256}, got ${actual}`, {
          code: 'ARTIFACT_DIGEST_MISMATCH',
          reason: 'ARTIFACT_DIGEST_MISMATCH',
          retryable: false,
          meta: { url: safeUrl, expected: p.sha256, actual, bytes },
        })
      }
      await chmod(tmpPath, 0o555)
      await rename(tmpPath, finalPath)
      log.info({ url: safeUrl, sha256: p.sha256, bytes, ms: Date.now() - started }, 'artifact downloaded and verified')
      return { path: finalPath, sha256: p.sha256, bytes, cached: false }
    }
  } catch (err) {
    await rm(tmpPath, { force: true }).catch(() => undefined)
    throw failure(err)
  } finally {
    await dispatcher.close().catch(() => undefined)
  }
}
