import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { PriceSourceFetchError } from './errors.js'
import { fetchText } from './http.js'

const BODY = 'x'.repeat(64 * 1024)
let server: Server
let url: string

beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.url === '/sized') {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(BODY.length) })
      res.end(BODY)
    } else if (req.url === '/bom') {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end('\uFEFF{"a":"é"}')
    } else {
      // chunked: no content-length, the size is only known while reading
      res.writeHead(200, { 'content-type': 'text/plain' })
      let sent = 0
      const more = () => {
        while (sent < BODY.length) {
          sent += 4096
          if (!res.write(BODY.slice(sent - 4096, sent))) return void res.once('drain', more)
        }
        res.end()
      }
      more()
    }
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
afterAll(async () => {
  server.closeAllConnections()
  await new Promise((r) => server.close(r))
})

describe('fetchText', () => {
  test('default: the whole body within the default limit; a UTF-8 BOM is dropped', async () => {
    expect(await fetchText('test', { url: `${url}/sized`, timeoutMs: 10_000 })).toBe(BODY)
    expect(await fetchText('test', { url: `${url}/chunked`, timeoutMs: 10_000 })).toBe(BODY)
    expect(await fetchText('test', { url: `${url}/bom`, timeoutMs: 10_000 })).toBe('{"a":"é"}')
  })

  test('args: maxBytes equal to the body size is enough', async () => {
    expect(await fetchText('test', { url: `${url}/chunked`, timeoutMs: 10_000, maxBytes: BODY.length })).toBe(BODY)
  })

  test.each(['sized', 'chunked'])('error: a %s body above maxBytes is a non-retryable fetch error', async (path) => {
    const err = await fetchText('test', { url: `${url}/${path}`, timeoutMs: 10_000, maxBytes: 10_000 }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(PriceSourceFetchError)
    expect((err as PriceSourceFetchError).retryable).toBe(false)
    expect((err as PriceSourceFetchError).shortMessage).toContain('body larger than 10000 bytes (maxBytes)')
  })
})
