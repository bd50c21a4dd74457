import { createHash } from 'node:crypto'
import { appendFile, mkdtemp, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises'
import http from 'node:http'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { createTestCommon } from '../../core/common.js'
import { isRetryable } from '../../core/errors.js'
import { startArtifactServer, type TestArtifactServer } from '../../test/helpers/artifact-server.js'
import { artifactCachePath, fetchArtifact } from './fetchArtifact.js'

const { common, shutdown } = createTestCommon()
const hex = (b: string | Buffer) => createHash('sha256').update(b).digest('hex')
let server: TestArtifactServer
let cacheDir: string
const body = Buffer.from('#!/bin/sh\necho hello\n')
const other = Buffer.from('#!/bin/sh\necho other\n')

beforeAll(async () => {
  server = await startArtifactServer({ app: body, other, big: Buffer.alloc(4096, 1) })
  cacheDir = await mkdtemp(join(tmpdir(), 'bpo-cache-'))
})
afterAll(async () => {
  await server.stop()
  await rm(cacheDir, { recursive: true, force: true })
  await shutdown()
})

// the test server listens on 127.0.0.1, which only an operator's allow-list opens
const fetchLocal = (p: Parameters<typeof fetchArtifact>[1]) => fetchArtifact(common, { allowHosts: ['127.0.0.1'], ...p })

async function failWith(p: Promise<unknown>) {
  try {
    await p
  } catch (err) {
    return err as { code: string; reason?: string; message: string }
  }
  throw new Error('expected a rejection')
}

async function deadUrl() {
  const s = createServer()
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
  const port = (s.address() as { port: number }).port
  await new Promise((r) => s.close(r))
  return `http://127.0.0.1:${port}/app`
}

describe('fetchArtifact', () => {
  test('default: downloads, verifies, caches by hash as an executable; the next call uses the verified cache', async () => {
    const r = await fetchLocal({ url: server.urlOf('app'), sha256: hex(body), cacheDir })
    expect(r).toEqual({ path: artifactCachePath(cacheDir, hex(body)), sha256: hex(body), bytes: body.length, cached: false })
    expect((await stat(r.path)).mode & 0o111).not.toBe(0)
    const hits = server.hits('app')
    const again = await fetchLocal({ url: server.urlOf('app'), sha256: hex(body), cacheDir })
    expect(again.cached).toBe(true)
    expect(server.hits('app')).toBe(hits)
  })

  test('behavior: a tampered cache entry is re-verified, dropped and downloaded again', async () => {
    const sha = hex(other)
    const first = await fetchLocal({ url: server.urlOf('other'), sha256: sha, cacheDir })
    await rm(first.path)
    await appendFile(join(cacheDir, 'sha256', sha), 'tampered', { mode: 0o755 })
    const hits = server.hits('other')
    const r = await fetchLocal({ url: server.urlOf('other'), sha256: sha, cacheDir })
    expect(r.cached).toBe(false)
    expect(server.hits('other')).toBe(hits + 1)
  })

  test('error: digest mismatch is not retryable and leaves nothing in the cache', async () => {
    const wrong = hex('something else')
    const err = await failWith(fetchLocal({ url: server.urlOf('app'), sha256: wrong, cacheDir }))
    expect(err.code).toBe('ARTIFACT_DIGEST_MISMATCH')
    expect(err.reason).toBe('ARTIFACT_DIGEST_MISMATCH')
    expect(isRetryable(err)).toBe(false)
    expect(await readdir(join(cacheDir, 'sha256'))).not.toContain(wrong)
    expect(await readdir(join(cacheDir, 'tmp'))).toEqual([])
  })

  test('error: 404 is not retryable, 500 is', async () => {
    server.fail('other', 'notFound')
    const e404 = await failWith(fetchLocal({ url: server.urlOf('other'), sha256: hex('x'), cacheDir }))
    expect(e404.code).toBe('ARTIFACT_UNREACHABLE')
    expect(isRetryable(e404)).toBe(false)
    server.fail('other', 'serverError')
    const e500 = await failWith(fetchLocal({ url: server.urlOf('other'), sha256: hex('x'), cacheDir }))
    expect(e500.reason).toBe('ARTIFACT_UNREACHABLE')
    expect(isRetryable(e500)).toBe(true)
    server.fail('other', undefined)
  })

  test('error: connection refused is retryable and credentials never show', async () => {
    const url = (await deadUrl()).replace('http://', 'http://alice:s3cret@')
    const err = await failWith(fetchLocal({ url, sha256: hex('x'), cacheDir }))
    expect(err.reason).toBe('ARTIFACT_UNREACHABLE')
    expect(isRetryable(err)).toBe(true)
    expect(err.message).not.toContain('s3cret')
    expect(JSON.stringify((err as unknown as { meta: unknown }).meta)).not.toContain('s3cret')
  })

  test('error: a server that hangs or stalls times out, retryable', async () => {
    server.fail('other', 'hang')
    const hang = await failWith(fetchLocal({ url: server.urlOf('other'), sha256: hex('x'), cacheDir, timeoutMs: 300 }))
    expect(hang.code).toBe('ARTIFACT_TIMEOUT')
    expect(isRetryable(hang)).toBe(true)
    server.fail('other', 'stall')
    const stall = await failWith(fetchLocal({ url: server.urlOf('other'), sha256: hex('x'), cacheDir, timeoutMs: 300 }))
    expect(stall.code).toBe('ARTIFACT_TIMEOUT')
    server.fail('other', undefined)
    expect(await readdir(join(cacheDir, 'tmp'))).toEqual([])
  })

  test('args: maxBytes caps the download', async () => {
    const err = await failWith(fetchLocal({ url: server.urlOf('big'), sha256: hex(Buffer.alloc(4096, 1)), cacheDir, maxBytes: 1000 }))
    expect(err.code).toBe('ARTIFACT_TOO_LARGE')
    expect(isRetryable(err)).toBe(false)
  })

  test('args: maxRedirects limits redirects; a redirect within the limit is followed', async () => {
    server.fail('r1', { redirectTo: 'app' })
    const sha = hex(body)
    const dir = await mkdtemp(join(tmpdir(), 'bpo-cache-'))
    try {
      expect((await fetchLocal({ url: server.urlOf('r1'), sha256: sha, cacheDir: dir })).bytes).toBe(body.length)
      server.fail('loop', { redirectTo: 'loop' })
      const err = await failWith(fetchLocal({ url: server.urlOf('loop'), sha256: hex('y'), cacheDir: dir, maxRedirects: 3 }))
      expect(err.code).toBe('ARTIFACT_TOO_MANY_REDIRECTS')
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  test('behavior: a stale partial download left by a killed daemon is removed', async () => {
    const stale = join(cacheDir, 'tmp', 'deadbeef.000000.part')
    const fresh = join(cacheDir, 'tmp', 'cafebabe.000000.part')
    await writeFile(stale, 'half')
    await writeFile(fresh, 'in progress')
    const old = new Date(Date.now() - 3_600_000)
    await utimes(stale, old, old)
    await fetchLocal({ url: server.urlOf('app'), sha256: hex('not cached'), cacheDir, timeoutMs: 60_000 }).catch(() => undefined)
    const left = await readdir(join(cacheDir, 'tmp'))
    expect(left).not.toContain('deadbeef.000000.part')
    expect(left).toContain('cafebabe.000000.part')
    await rm(fresh)
  })

  test('error: bad digests, bad URLs and an aborted signal', async () => {
    expect((await failWith(fetchLocal({ url: server.urlOf('app'), sha256: 'ABC', cacheDir }))).code).toBe('ARTIFACT_DIGEST_INVALID')
    expect((await failWith(fetchLocal({ url: 'file:///etc/passwd', sha256: hex('x'), cacheDir }))).code).toBe('ARTIFACT_URL_INVALID')
    const ac = new AbortController()
    ac.abort()
    expect((await failWith(fetchLocal({ url: server.urlOf('app'), sha256: hex('x'), cacheDir, signal: ac.signal }))).code).toBe('ABORTED')
  })

  test('error: a loopback address is refused with a non-retryable code unless the operator allows it', async () => {
    const sha = hex(body)
    const fresh = await mkdtemp(join(tmpdir(), 'bpo-cache-ssrf-'))
    try {
      const hits = server.hits('app')
      const err = await failWith(fetchArtifact(common, { url: server.urlOf('app'), sha256: sha, cacheDir: fresh }))
      expect({ code: err.code, reason: err.reason, retryable: isRetryable(err) }).toEqual({ code: 'ARTIFACT_HOST_REFUSED', reason: 'ARTIFACT_UNREACHABLE', retryable: false })
      expect(server.hits('app')).toBe(hits)
      for (const url of ['http://169.254.169.254/latest/meta-data/', 'http://10.0.0.1/x', 'http://[::1]:1/x', 'http://[fd00::1]/x', 'http://100.64.0.1/x', 'http://0.0.0.0/x', 'http://[::ffff:127.0.0.1]/x', 'http://2130706433/x']) {
        expect({ url, code: (await failWith(fetchArtifact(common, { url, sha256: sha, cacheDir: fresh }))).code }).toEqual({ url, code: 'ARTIFACT_HOST_REFUSED' })
      }
      // allowed by address, by CIDR
      expect((await fetchArtifact(common, { url: server.urlOf('app'), sha256: sha, cacheDir: fresh, allowHosts: ['127.0.0.0/8'] })).sha256).toBe(sha)
    } finally {
      await rm(fresh, { recursive: true, force: true })
    }
  })

  test('error: a name that resolves to a loopback address is refused at connect time, also behind a redirect', async () => {
    const sha = hex(other)
    const fresh = await mkdtemp(join(tmpdir(), 'bpo-cache-ssrf-'))
    try {
      const port = new URL(server.url).port
      // "localhost" stands in for a public-looking name whose DNS answer is 127.0.0.1
      const direct = await failWith(fetchArtifact(common, { url: `http://localhost:${port}/other`, sha256: sha, cacheDir: fresh, allowHosts: ['localhost.example'] }))
      expect(direct.code).toBe('ARTIFACT_HOST_REFUSED')
      // the first hop (127.0.0.2) is allowed, the redirect target (localhost: 127.0.0.1) is not
      const redirect = http.createServer((_req, res) => res.writeHead(302, { location: `http://localhost:${port}/other` }).end())
      await new Promise<void>((r) => redirect.listen(0, '127.0.0.2', r))
      try {
        const hops = server.hits('other')
        const jump = `http://127.0.0.2:${(redirect.address() as { port: number }).port}/jump`
        const err = await failWith(fetchArtifact(common, { url: jump, sha256: sha, cacheDir: fresh, allowHosts: ['127.0.0.2'] }))
        expect({ code: err.code, retryable: isRetryable(err) }).toEqual({ code: 'ARTIFACT_HOST_REFUSED', retryable: false })
        expect(server.hits('other')).toBe(hops)
        // the same chain with the name allowed goes through
        expect((await fetchArtifact(common, { url: jump, sha256: sha, cacheDir: fresh, allowHosts: ['127.0.0.2', 'localhost'] })).sha256).toBe(sha)
      } finally {
        await new Promise((r) => redirect.close(r))
      }
    } finally {
      await rm(fresh, { recursive: true, force: true })
    }
  })
})
