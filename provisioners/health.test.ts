import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { probeHttp, waitForHealthy } from './health.js'

let server: Server
let url: string
let healthyAfter = 0

beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.url === '/ok') return void res.writeHead(200).end('ok')
    if (req.url === '/redirect') return void res.writeHead(302, { location: '/ok' }).end()
    if (req.url === '/hang') return
    if (req.url === '/later') return void res.writeHead(--healthyAfter <= 0 ? 200 : 503).end()
    res.writeHead(500).end()
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
afterAll(async () => {
  server.closeAllConnections()
  await new Promise((r) => server.close(r))
})

describe('probeHttp', () => {
  test('default: 2xx and 3xx are healthy, 5xx is not', async () => {
    expect(await probeHttp({ url: `${url}/ok` })).toEqual({ ok: true, status: 200 })
    expect(await probeHttp({ url: `${url}/redirect` })).toEqual({ ok: true, status: 302 })
    expect(await probeHttp({ url: `${url}/boom` })).toEqual({ ok: false, status: 500 })
  })

  test('error: refused connections and hangs are unhealthy, not thrown', async () => {
    const refused = await probeHttp({ url: 'http://127.0.0.1:9/' })
    expect(refused.ok).toBe(false)
    expect(refused.error).toBe('ECONNREFUSED')
    const hang = await probeHttp({ url: `${url}/hang`, timeoutMs: 200 })
    expect(hang).toEqual({ ok: false, error: 'no answer within 200 ms' })
  })

  test('error: an aborted signal throws AbortedError', async () => {
    const ac = new AbortController()
    ac.abort()
    await expect(probeHttp({ url: `${url}/ok`, signal: ac.signal })).rejects.toMatchObject({ code: 'ABORTED' })
  })
})

describe('waitForHealthy', () => {
  test('default: probes until healthy', async () => {
    healthyAfter = 3
    expect(await waitForHealthy({ url: `${url}/later`, deadlineMs: 20_000, intervalMs: 10 })).toEqual({ ok: true, status: 200 })
  })

  test('behavior: stops when the workload exits', async () => {
    let alive = 2
    const r = await waitForHealthy({ url: `${url}/boom`, deadlineMs: 20_000, intervalMs: 10, stillAlive: () => alive-- > 0 })
    expect(r).toMatchObject({ ok: false, exited: true, status: 500 })
  })

  test('behavior: gives up at the deadline with the last result', async () => {
    const r = await waitForHealthy({ url: `${url}/boom`, deadlineMs: 300, intervalMs: 50 })
    expect(r).toEqual({ ok: false, status: 500 })
  })
})
