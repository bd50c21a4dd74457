/**
 * Webhooks: every service stage change (filtered per hook by the stage reached) is put in the durable outbox and
 * POSTed as JSON, signed `X-Blueprint-Signature: sha256=<hex HMAC-SHA256 of the raw body>` with the hook's secret.
 * A hook's deliveries go out in order; a failure (not 2xx, timeout, refused) is retried with exponential backoff
 * (jittered, capped), and an entry still failing after `giveUpMs` is dropped with an error log. Nothing here ever
 * blocks the service manager: the bus listener only queues.
 */
import { createHmac, randomUUID } from 'node:crypto'
import { join } from 'node:path'
import type { Common } from '../../core/common.js'
import { redactUrl } from '../../core/errors.js'
import type { Secret } from '../../config/secrets.js'
import type { EventBus, StageEvent } from '../events.js'
import { openOutbox, type Outbox, type OutboxEntry } from './outbox.js'

export type WebhookConfig = { url: string; secret: Secret; events: string[]; timeoutMs: number }

export type WebhooksParameters = {
  hooks: readonly WebhookConfig[]
  dataDir: string
  bus: EventBus
  operatorId: string
  chainId: number
  /** First retry delay, ms (doubled up to maxDelayMs). Default 1_000. */
  baseDelayMs?: number
  maxDelayMs?: number
  /** Drop an entry still undelivered this long after it was made. Default 3 days. */
  giveUpMs?: number
}

export type Webhooks = {
  /** Entries not delivered yet. */
  pending(): number
  /** Resolves when nothing is pending (tests). */
  drained(): Promise<void>
  close(): Promise<void>
}

/** `sha256=<hex>` of `body` under `secret`: what a receiver recomputes over the raw body it got. */
export function signature(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body, 'utf8').digest('hex')}`
}

export function startWebhooks(common: Common, p: WebhooksParameters): Webhooks {
  const log = common.logger
  const outbox: Outbox = openOutbox(join(p.dataDir, 'webhooks', 'outbox.jsonl'))
  const base = p.baseDelayMs ?? 1_000
  const max = p.maxDelayMs ?? 300_000
  const giveUp = p.giveUpMs ?? 3 * 86_400_000
  const m = {
    deliveries: common.metrics.counter('bpo_webhook_deliveries_total', 'Webhook delivery attempts by result (delivered, failed, dropped)', { labels: ['result'] }),
    pending: common.metrics.gauge('bpo_webhook_pending', 'Webhook entries in the outbox not delivered yet', { collect: () => m.pending.set(outbox.pending().length) }),
  }
  const byUrl = new Map(p.hooks.map((h) => [h.url, h]))
  const queues = new Map<string, { running: boolean; failures: number; timer?: NodeJS.Timeout }>()
  let closed = false
  let waiters: Array<() => void> = []
  let appending = 0
  const settle = () => {
    if (outbox.pending().length || appending) return
    for (const w of waiters.splice(0)) w()
  }

  const attempt = async (hook: WebhookConfig, e: OutboxEntry): Promise<boolean> => {
    try {
      const res = await fetch(hook.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'blueprint-operator',
          'x-blueprint-signature': signature(hook.secret.reveal(), e.body),
          'x-blueprint-delivery': e.id,
          'x-blueprint-event': 'service.stage',
        },
        body: e.body,
        redirect: 'manual',
        signal: AbortSignal.any([AbortSignal.timeout(hook.timeoutMs), common.signal]),
      })
      await res.arrayBuffer().catch(() => undefined)
      if (res.status >= 200 && res.status < 300) return true
      log.warn({ url: redactUrl(hook.url), status: res.status, delivery: e.id }, 'webhook refused; will retry')
    } catch (err) {
      if (!closed) log.warn({ url: redactUrl(hook.url), err: (err as Error).message, delivery: e.id }, 'webhook unreachable; will retry')
    }
    return false
  }

  /** Deliver a hook's pending entries in order; on failure, back off and come back. */
  const pump = (url: string): void => {
    const q = queues.get(url) ?? { running: false, failures: 0 }
    queues.set(url, q)
    if (q.running || q.timer || closed) return
    const hook = byUrl.get(url)
    q.running = true
    void (async () => {
      try {
        for (;;) {
          if (closed) return
          const next = outbox.pending().find((x) => x.hook === url)
          if (!next) return
          if (!hook) {
            // a hook removed from the configuration: its entries have nowhere to go
            await outbox.done(next.id, 'dropped')
            m.deliveries.inc({ result: 'dropped' })
            continue
          }
          if (await attempt(hook, next)) {
            await outbox.done(next.id, 'delivered')
            m.deliveries.inc({ result: 'delivered' })
            q.failures = 0
            continue
          }
          m.deliveries.inc({ result: 'failed' })
          if (Date.now() - Date.parse(next.createdAt) > giveUp) {
            log.error({ url: redactUrl(url), delivery: next.id }, 'webhook undeliverable for too long; dropped')
            await outbox.done(next.id, 'dropped')
            m.deliveries.inc({ result: 'dropped' })
            continue
          }
          const delay = Math.min(max, base * 2 ** Math.min(q.failures++, 20)) * (0.8 + Math.random() * 0.4)
          q.timer = setTimeout(() => {
            q.timer = undefined
            pump(url)
          }, delay)
          q.timer.unref?.()
          return
        }
      } catch (err) {
        log.error({ err, url: redactUrl(url) }, 'webhook outbox failed')
      } finally {
        q.running = false
        settle()
      }
    })()
  }

  const off = p.bus.subscribe((e) => {
    if (e.type !== 'stage' || closed) return
    const body = (hookEvent: StageEvent) =>
      JSON.stringify({
        type: 'service.stage',
        operatorId: p.operatorId,
        chainId: p.chainId,
        serviceId: hookEvent.serviceId,
        from: hookEvent.from,
        to: hookEvent.to,
        cause: hookEvent.cause,
        at: hookEvent.at,
        ...(hookEvent.detail && { detail: hookEvent.detail }),
        ...(hookEvent.reason && { reason: hookEvent.reason }),
      })
    for (const h of p.hooks) {
      if (h.events.length && !h.events.includes(e.to)) continue
      const entry: OutboxEntry = { id: randomUUID(), hook: h.url, body: body(e), createdAt: new Date().toISOString() }
      appending++
      outbox
        .append(entry)
        .then(
          () => pump(h.url),
          (err) => log.error({ err, url: redactUrl(h.url) }, 'webhook outbox write failed; this stage change is not sent'),
        )
        .finally(() => {
          appending--
          settle()
        })
    }
  })

  // entries a previous run left undelivered go out first
  for (const url of new Set(outbox.pending().map((e) => e.hook))) pump(url)

  return {
    pending: () => outbox.pending().length,
    drained: () => (outbox.pending().length || appending ? new Promise<void>((r) => waiters.push(r)) : Promise.resolve()),
    async close() {
      closed = true
      off()
      for (const q of queues.values()) clearTimeout(q.timer)
      waiters = []
      await outbox.close()
    },
  }
}
