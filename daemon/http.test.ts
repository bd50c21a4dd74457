import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { pino } from 'pino'
import { createTestCommon } from '../core/common.js'
import { startHttpServer, type HttpServer } from './http.js'
import { applyEvents } from './intake.js'
import { createStore, type Store } from './store.js'

describe('startHttpServer', () => {
  const { common, shutdown } = createTestCommon()
  let store: Store
  let http: HttpServer
  let ready = true
  beforeAll(async () => {
    store = await createStore(common, { file: join(mkdtempSync(join(tmpdir(), 'bpo-http-')), 'state.json'), operatorId: 'op', chainId: 31337 })
    await store.update((st) =>
      applyEvents(
        st,
        [
          {
            chainId: 31337, blockNumber: 1n, blockHash: `0x${'aa'.repeat(32)}`, txHash: `0x${'bb'.repeat(32)}`, logIndex: 0,
            type: 'ServiceInitiated', serviceId: 3n, blueprintId: 1n, customer: `0x${'22'.repeat(20)}`, operator: `0x${'11'.repeat(20)}`,
            tier: 0, preferences: { ok: true, value: {} }, ttlSeconds: 60n, deposit: 5n, ratePerHour: 3600n,
          },
        ],
        { operator: `0x${'11'.repeat(20)}`, chainId: 31337, logger: pino({ level: 'silent' }) },
      ),
    )
    common.metrics.counter('bpo_test_total', 'test counter').inc({ x: 'y' })
    http = await startHttpServer(common, { host: '127.0.0.1', port: 0, store, status: () => ({ ready, operatorId: 'op<script>', chainId: 31337 }) })
  })
  afterAll(async () => {
    await http.close()
    await shutdown(1000)
  })

  test('default: health, readiness and metrics', async () => {
    expect((await fetch(`${http.url}/healthz`)).status).toBe(200)
    expect((await fetch(`${http.url}/readyz`)).status).toBe(200)
    ready = false
    expect((await fetch(`${http.url}/readyz`)).status).toBe(503)
    ready = true
    const m = await (await fetch(`${http.url}/metrics`)).text()
    expect(m).toContain('# TYPE bpo_test_total counter')
    expect(m).toContain('bpo_test_total{x="y"} 1')
  })

  test('behavior: the API lists services and shows one', async () => {
    const list = (await (await fetch(`${http.url}/api/services`)).json()) as Array<{ serviceId: string; state: string }>
    expect(list).toEqual([expect.objectContaining({ serviceId: '3', state: 'requested' })])
    const one = (await (await fetch(`${http.url}/api/services/3`)).json()) as { history: unknown[] }
    expect(one.history).toHaveLength(1)
    expect((await fetch(`${http.url}/api/services/99`)).status).toBe(404)
    expect((await fetch(`${http.url}/api/services`, { method: 'POST' })).status).toBe(405)
  })

  test('behavior: the dashboard escapes what it shows', async () => {
    const html = await (await fetch(`${http.url}/`)).text()
    expect(html).toContain('<td>3</td>')
    expect(html).toContain('op&#60;script&#62;')
    expect(html).not.toContain('op<script>')
  })
})
