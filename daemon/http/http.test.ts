import { existsSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import Database from 'better-sqlite3'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { pino } from 'pino'
import { createCommon } from '../../core/common.js'
import { parseConfig, type OperatorConfig } from '../config.js'
import type { ChainEvent } from '../../chain/events.js'
import { createActions } from '../actions.js'
import { createEventBus, watchStages, type DaemonEvent } from '../events.js'
import { applyEvents } from '../intake.js'
import { instrumentTargets } from '../observe.js'
import { createStore, type Store } from '../store.js'
import { createTargets } from '../targets.js'
import { startHttpServer, type HttpContext, type HttpServer } from './index.js'

const TOKEN = 'tok-' + 'x'.repeat(40)
const operator = `0x${'11'.repeat(20)}` as const

function request(id: bigint, logIndex: number): ChainEvent {
  return {
    chainId: 31337, blockNumber: 1n, blockHash: `0x${'aa'.repeat(32)}`, txHash: `0x${'bb'.repeat(32)}`, logIndex,
    type: 'ServiceInitiated', serviceId: id, blueprintId: 1n, customer: `0x${'22'.repeat(20)}`, operator,
    tier: 0, preferences: { ok: true, value: {} }, ttlSeconds: 60n, deposit: 5_000_000n, ratePerHour: 3_600_000n,
  }
}

describe('http API', () => {
  let logs = ''
  const { common, shutdown } = createCommon({ level: 'debug', destination: new Writable({ write: (c, _e, cb) => ((logs += c), cb()) }) as unknown as pino.DestinationStream })
  let store: Store
  let http: HttpServer
  let ctx: HttpContext
  let config: OperatorConfig
  let dataDir: string
  const kicked: string[] = []
  let follower = true
  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'bpo-http-'))
    config = parseConfig(
      {
        operator: { id: 'op-http', data_dir: dataDir },
        chain: { rpc_url: 'http://127.0.0.1:1', chain_id: 31337, private_key: 'env:K', registry: operator, escrow: operator },
        http: { listen: '127.0.0.1:0', admin_token: 'env:ADMIN' },
        providers: { local: { enabled: true, vcpu: 4, memory_gib: 8 } },
      },
      { env: { K: `0x${'ab'.repeat(32)}`, ADMIN: TOKEN } },
    )
    const bus = createEventBus(common.logger)
    store = watchStages(await createStore(common, { file: join(dataDir, 'state.sqlite'), operatorId: 'op-http', chainId: 31337 }), bus)
    await store.update((st) => applyEvents(st, [request(3n, 0), request(4n, 1)], { operator, chainId: 31337, logger: pino({ level: 'silent' }) }))
    const targets = instrumentTargets(common, await createTargets(common, config))
    const actions = createActions(common, { store, targets, kick: (id) => kicked.push(id), dataDir, configDraining: false })
    ctx = {
      common, config, store, targets, bus, actions, operator, adminToken: config.http.adminToken,
      chain: () => ({ chainId: 31337, head: '10', cursor: '8', lag: 2 }),
      now: () => BigInt(Math.floor(Date.now() / 1000)),
      checks: async () => [
        { name: 'chain-follower', ok: follower, critical: true, detail: 'x' },
        { name: 'price-sources', ok: false, critical: false, detail: 'none' },
      ],
    }
    http = await startHttpServer({ ...ctx, host: '127.0.0.1', port: 0 })
  })
  afterAll(async () => {
    await http?.close()
    await ctx?.targets.close()
    await shutdown(1000)
  })
  const waitUntil = async <T>(fn: () => Promise<T | undefined>): Promise<T> => {
    for (let i = 0; i < 100; i++) {
      const v = await fn()
      if (v) return v
      await new Promise((r) => setTimeout(r, 50))
    }
    throw new Error('timed out')
  }
  const get = (path: string, init?: RequestInit) => fetch(`${http.url}${path}`, init)
  const post = (path: string, token?: string, body: unknown = {}) =>
    get(path, { method: 'POST', headers: { 'content-type': 'application/json', ...(token && { authorization: `Bearer ${token}` }) }, body: JSON.stringify(body) })

  test('default: health, readiness with named checks, Prometheus metrics with the process defaults', async () => {
    expect(await (await get('/healthz')).json()).toEqual({ ok: true })
    const ready = await get('/readyz')
    expect(ready.status).toBe(200)
    expect(((await ready.json()) as { checks: Array<{ name: string }> }).checks.map((c) => c.name)).toEqual(['chain-follower', 'price-sources'])
    follower = false
    expect((await get('/readyz')).status).toBe(503)
    follower = true
    const m = await get('/metrics')
    expect(m.headers.get('content-type')).toMatch(/^text\/plain/)
    const text = await m.text()
    expect(text).toContain('process_cpu_seconds_total')
    expect(text).toContain('nodejs_eventloop_lag_seconds')
    expect(text).toContain('bpo_provisioner_calls_total{op="provision",target="local"} 0')
  })

  test('behavior: services are listed and shown with their timeline; stable error codes', async () => {
    const list = (await (await get('/api/services')).json()) as Array<{ serviceId: string; state: string; money: { paid: string } }>
    expect(list.map((s) => [s.serviceId, s.state])).toEqual([['3', 'requested'], ['4', 'requested']])
    expect(list[0]!.money.paid).toBe('5000000')
    const one = (await (await get('/api/services/3')).json()) as { timeline: Array<{ to: string }>; decision: unknown; ledger: unknown }
    expect(one.timeline.map((t) => t.to)).toEqual(['requested'])
    expect(one).toHaveProperty('decision', null)
    expect(one).toHaveProperty('ledger')
    const missing = await get('/api/services/99')
    expect(missing.status).toBe(404)
    expect(await missing.json()).toEqual({ error: { code: 'SERVICE_NOT_FOUND', message: 'no service 99' } })
    const bad = await get('/api/services/abc')
    expect(bad.status).toBe(400)
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBe('BAD_REQUEST')
    expect(((await (await get('/nope')).json()) as { error: { code: string } }).error.code).toBe('NOT_FOUND')
  })

  test('behavior: targets with capacity, pricing sources, quote, status and the OpenAPI document', async () => {
    const targets = (await (await get('/api/targets')).json()) as Array<{ name: string; capacity: { vcpu: number }; free: { vcpu: number }; lastError: unknown }>
    expect(targets).toEqual([expect.objectContaining({ name: 'local', capacity: expect.objectContaining({ vcpu: 4 }), free: expect.objectContaining({ vcpu: 4 }), lastError: null })])
    expect(await (await get('/api/pricing')).json()).toEqual({ enabled: false, sources: [] })
    // the operator's own targets are offers too (no public source is enabled here)
    const q = (await (await get('/api/quote?cpu=1&memory=1')).json()) as { quotes: Array<{ offer: { provider: string; instanceType: string } }> }
    expect(q.quotes[0]!.offer).toMatchObject({ provider: 'own' })
    const none = await get('/api/quote?cpu=1000&memory=1')
    expect(none.status).toBe(404)
    expect(((await none.json()) as { error: { code: string } }).error.code).toBe('NO_FEASIBLE_OFFER')
    expect((await get('/api/quote?memory=1')).status).toBe(400)
    const st = (await (await get('/api/status')).json()) as { chain: { lag: number }; draining: boolean }
    expect(st.chain.lag).toBe(2)
    const doc = (await (await get('/api/openapi.json')).json()) as { openapi: string; paths: Record<string, unknown> }
    expect(doc.openapi).toBe('3.0.3')
    for (const p of ['/api/services', '/api/services/{id}', '/api/services/{id}/restart', '/api/services/{id}/stop', '/api/operator/drain', '/api/targets', '/api/pricing', '/api/quote', '/api/events', '/healthz', '/readyz', '/metrics'])
      expect(Object.keys(doc.paths)).toContain(p)
  })

  test('error: actions need the bearer token (401), compared in constant time and never logged', async () => {
    const none = await post('/api/services/3/stop')
    expect(none.status).toBe(401)
    expect(((await none.json()) as { error: { code: string } }).error.code).toBe('UNAUTHORIZED')
    expect((await post('/api/services/3/stop', TOKEN.slice(0, -1))).status).toBe(401)
    expect((await post('/api/operator/drain', 'wrong')).status).toBe(401)
    expect(ctx.store.read().services['3']!.state).toBe('requested')
    expect(logs).not.toContain(TOKEN)
  })

  test('behavior: stop moves the service towards its end with OPERATOR_STOPPED; the stage goes out as an event', async () => {
    const seen: DaemonEvent[] = []
    const off = ctx.bus.subscribe((e) => seen.push(e))
    const sse = await get('/api/events')
    expect(sse.headers.get('content-type')).toMatch(/^text\/event-stream/)
    const reader = sse.body!.getReader()
    let text = ''
    const read = async (until: string) => {
      while (!text.includes(until)) text += new TextDecoder().decode((await reader.read()).value)
    }
    await read('event: status')

    const res = await post('/api/services/3/stop', TOKEN)
    expect(res.status).toBe(202)
    expect(await res.json()).toEqual({ serviceId: '3', state: 'refunding' })
    const s = ctx.store.read().services['3']!
    expect(s).toMatchObject({ state: 'refunding', reason: 'OPERATOR_STOPPED' })
    expect(s.history.at(-1)).toMatchObject({ from: 'requested', to: 'refunding', cause: 'OPERATOR_STOPPED' })
    expect(kicked).toContain('3')
    await read('event: stage')
    expect(text).toMatch(/"serviceId":"3","from":"requested","to":"refunding","cause":"OPERATOR_STOPPED"/)
    expect(seen).toEqual([expect.objectContaining({ type: 'stage', serviceId: '3', to: 'refunding' })])
    await reader.cancel()
    off()

    const again = await post('/api/services/3/stop', TOKEN)
    expect(again.status).toBe(409)
    expect(((await again.json()) as { error: { code: string } }).error.code).toBe('ACTION_NOT_ALLOWED')
    expect((await post('/api/services/4/restart', TOKEN)).status).toBe(409)
    expect((await post('/api/services/77/restart', TOKEN)).status).toBe(404)
  })

  test('behavior: drain at run time, kept in the data dir, lifted again', async () => {
    expect(await (await post('/api/operator/drain', TOKEN)).json()).toEqual({ draining: true })
    expect(ctx.actions.draining()).toBe(true)
    expect(existsSync(join(dataDir, 'draining'))).toBe(true)
    expect(((await (await get('/api/status')).json()) as { draining: boolean }).draining).toBe(true)
    expect(await (await post('/api/operator/drain', TOKEN, { draining: false })).json()).toEqual({ draining: false })
    expect(existsSync(join(dataDir, 'draining'))).toBe(false)
    expect((await post('/api/operator/drain', TOKEN, { draining: 'yes please' })).status).toBe(400)
  })

  test('behavior: the dashboard page and script are served with a strict content security policy', async () => {
    const page = await get('/')
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'")
    expect(await page.text()).toContain('<script src="/dashboard.js" defer></script>')
    expect(await (await get('/dashboard.js')).text()).toContain("new EventSource('/api/events')")
  })

  test('error: event streams are bounded — the 65th at once is refused with 503 TOO_MANY_CLIENTS; a closed one frees its slot', async () => {
    const other = await startHttpServer({ ...ctx, host: '127.0.0.1', port: 0 })
    const streams: AbortController[] = []
    try {
      for (let i = 0; i < 64; i++) {
        const ac = new AbortController()
        const r = await fetch(`${other.url}/api/events`, { signal: ac.signal })
        expect(r.status).toBe(200)
        streams.push(ac)
      }
      const refused = await fetch(`${other.url}/api/events`)
      expect(refused.status).toBe(503)
      expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('TOO_MANY_CLIENTS')
      streams.pop()!.abort()
      const again = await waitUntil(async () => {
        const r = await fetch(`${other.url}/api/events`)
        if (r.status === 200) return r
        await r.body?.cancel()
      })
      expect(again.status).toBe(200)
      await again.body!.cancel()
    } finally {
      for (const ac of streams) ac.abort()
      await other.close()
    }
  })

  test('error: an action whose state write fails answers 500 INTERNAL_ERROR with nothing of the cause; the state is unchanged', async () => {
    // the disk refuses every write of a service row (as a full disk or a read-only file system would)
    const db = new Database(join(dataDir, 'state.sqlite'))
    db.exec("CREATE TRIGGER refuse_service_write BEFORE INSERT ON services BEGIN SELECT RAISE(ABORT, 'disk refused the write'); END")
    try {
      logs = ''
      const res = await post('/api/services/4/stop', TOKEN)
      expect(res.status).toBe(500)
      expect(await res.json()).toEqual({ error: { code: 'INTERNAL_ERROR', message: 'internal error (see the daemon log)' } })
      expect(store.read().services['4']!.state).toBe('requested')
      // the cause is in the daemon log, not in the answer
      expect(logs).toContain('STATE_WRITE_FAILED')
    } finally {
      db.exec('DROP TRIGGER refuse_service_write')
      db.close()
    }
  })

  test('error: without an admin token the actions are disabled (403); a busy address names http.listen', async () => {
    const other = await startHttpServer({ ...ctx, adminToken: undefined, host: '127.0.0.1', port: 0 })
    try {
      const r = await fetch(`${other.url}/api/services/4/stop`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } })
      expect(r.status).toBe(403)
      expect(((await r.json()) as { error: { code: string } }).error.code).toBe('ACTIONS_DISABLED')
    } finally {
      await other.close()
    }
    const port = Number(new URL(http.url).port)
    await expect(startHttpServer({ ...ctx, host: '127.0.0.1', port })).rejects.toMatchObject({ code: 'HTTP_LISTEN_FAILED', shortMessage: expect.stringMatching(/^http\.listen: cannot listen on 127\.0\.0\.1:\d+ \(the address is already in use\)/) })
  })
})
