import { createHmac, timingSafeEqual } from 'node:crypto'
import { mkdtempSync, readFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest'
import { createTestCommon } from '../../core/common.js'
import { makeSecret } from '../../config/secrets.js'
import { createEventBus, type StageEvent } from '../events.js'
import { startWebhooks, type Webhooks } from './webhooks.js'

const SECRET = 'whsec-' + 'q'.repeat(30)

/** A receiver that checks the signature as a customer's would: HMAC-SHA256 of the raw body, constant-time compare. */
function receiver() {
  const got: Array<{ body: Record<string, unknown>; verified: boolean; delivery: string }> = []
  let failNext = 0
  let attempts = 0
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      attempts++
      if (failNext > 0) {
        failNext--
        res.writeHead(503).end('busy')
        return
      }
      const raw = Buffer.concat(chunks)
      const want = Buffer.from(`sha256=${createHmac('sha256', SECRET).update(raw).digest('hex')}`)
      const sig = Buffer.from(String(req.headers['x-blueprint-signature'] ?? ''))
      const verified = sig.length === want.length && timingSafeEqual(sig, want)
      got.push({ body: JSON.parse(raw.toString('utf8')) as Record<string, unknown>, verified, delivery: String(req.headers['x-blueprint-delivery']) })
      res.writeHead(verified ? 204 : 401).end()
    })
  })
  return {
    got,
    attempts: () => attempts,
    failNext: (n: number) => void (failNext = n),
    url: () => `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    listen: () => new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r())),
    close: () => new Promise<void>((r) => server.close(() => r())),
  }
}

const stage = (serviceId: string, to: StageEvent['to'], from: StageEvent['from'] = null): StageEvent => ({
  type: 'stage', serviceId, from, to, cause: 'test', at: new Date().toISOString(),
})

describe('webhooks', () => {
  const { common, shutdown } = createTestCommon()
  const rx = receiver()
  const open: Webhooks[] = []
  beforeAll(() => rx.listen())
  afterEach(async () => {
    for (const w of open.splice(0)) await w.close()
  })
  afterAll(async () => {
    await rx.close()
    await shutdown(1000)
  })
  const start = (dataDir: string, o: { events?: string[]; url?: string } = {}) => {
    const bus = createEventBus(common.logger)
    const w = startWebhooks(common, {
      hooks: [{ url: o.url ?? rx.url(), secret: makeSecret('env:TEST', SECRET), events: o.events ?? [], timeoutMs: 2_000 }],
      dataDir, bus, operatorId: 'op-w', chainId: 31337, baseDelayMs: 50, maxDelayMs: 200,
    })
    open.push(w)
    return { bus, w }
  }

  test('default: each stage change is POSTed as signed JSON, in order, filtered by the stages asked for', async () => {
    rx.got.length = 0
    const { bus, w } = start(mkdtempSync(join(tmpdir(), 'bpo-wh-')), { events: ['active', 'closed'] })
    bus.emit(stage('1', 'requested'))
    bus.emit(stage('1', 'provisioning', 'requested'))
    bus.emit(stage('1', 'active', 'provisioning'))
    bus.emit({ type: 'tick', at: new Date().toISOString() })
    bus.emit(stage('1', 'closed', 'terminating'))
    await w.drained()
    expect(rx.got.map((g) => [g.body.to, g.verified])).toEqual([['active', true], ['closed', true]])
    expect(rx.got[0]!.body).toMatchObject({ type: 'service.stage', operatorId: 'op-w', chainId: 31337, serviceId: '1', from: 'provisioning', to: 'active', cause: 'test' })
    expect(new Set(rx.got.map((g) => g.delivery)).size).toBe(2)
  })

  test('behavior: a receiver that fails twice gets the same delivery a third time; the next one waits its turn', async () => {
    rx.got.length = 0
    const before = rx.attempts()
    const { bus, w } = start(mkdtempSync(join(tmpdir(), 'bpo-wh-')))
    rx.failNext(2)
    bus.emit(stage('2', 'requested'))
    bus.emit(stage('2', 'refunding', 'requested'))
    await w.drained()
    expect(rx.attempts() - before).toBe(4)
    expect(rx.got.map((g) => g.body.to)).toEqual(['requested', 'refunding'])
    expect(rx.got.every((g) => g.verified)).toBe(true)
  })

  test('behavior: entries undelivered when the daemon stops are delivered after a restart, once', async () => {
    rx.got.length = 0
    const dir = mkdtempSync(join(tmpdir(), 'bpo-wh-'))
    rx.failNext(1_000_000) // the receiver is down
    const first = start(dir)
    first.bus.emit(stage('3', 'requested'))
    first.bus.emit(stage('3', 'provisioning', 'requested'))
    await new Promise((r) => setTimeout(r, 300))
    expect(first.w.pending()).toBe(2)
    await first.w.close()
    open.splice(open.indexOf(first.w), 1)
    const file = join(dir, 'webhooks', 'outbox.jsonl')
    expect(readFileSync(file, 'utf8').trim().split('\n').filter((l) => l.includes('"body"'))).toHaveLength(2)

    rx.failNext(0) // back up; the daemon starts again on the same data dir
    const second = start(dir)
    expect(second.w.pending()).toBe(2)
    await second.w.drained()
    expect(rx.got.map((g) => [g.body.serviceId, g.body.to, g.verified])).toEqual([['3', 'requested', true], ['3', 'provisioning', true]])
    await second.w.close()
    open.splice(open.indexOf(second.w), 1)

    // delivered entries are compacted away at the next open; nothing is sent twice
    const third = start(dir)
    expect(third.w.pending()).toBe(0)
    expect(readFileSync(file, 'utf8')).toBe('')
    await new Promise((r) => setTimeout(r, 100))
    expect(rx.got).toHaveLength(2)
  })
})
