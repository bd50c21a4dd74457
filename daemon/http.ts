/**
 * The daemon's HTTP surface: /healthz (liveness), /readyz (readiness), /metrics (Prometheus), a read-only JSON API
 * under /api and a small dashboard at /. Binds the configured address (127.0.0.1 by default).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Common } from '../core/common.js'
import { redactText } from '../core/redact.js'
import type { ServiceRecord } from './state.js'
import type { Store } from './store.js'

export type HttpServer = { url: string; close(): Promise<void> }

export type StartHttpParameters = {
  host: string
  port: number
  store: Store
  /** Extra status for /api/status and readiness. */
  status(): Record<string, unknown> & { ready: boolean }
}

const summary = (s: ServiceRecord) => ({
  serviceId: s.serviceId,
  blueprintId: s.blueprintId,
  customer: s.customer,
  state: s.state,
  tier: s.tier ?? null,
  replicas: s.replicas,
  endpoints: s.endpoints,
  target: s.quote?.target ?? null,
  hourlyUsd: s.quote?.totalHourlyUsd ?? null,
  paidUntil: s.chain?.paidUntil ?? null,
  endsAt: s.chain?.endsAt ?? null,
  reason: s.reason ?? null,
  ledger: s.ledger,
  updatedAt: s.updatedAt,
})

const esc = (v: unknown) => String(v ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)

function dashboard(services: ServiceRecord[], status: Record<string, unknown>): string {
  const rows = services
    .map((s) => {
      const x = summary(s)
      const last = s.history[s.history.length - 1]
      return `<tr><td>${esc(x.serviceId)}</td><td>${esc(x.blueprintId)}</td><td class="st ${esc(x.state)}">${esc(x.state)}</td><td>${esc(x.tier)}</td><td>${esc(x.replicas)}</td><td>${esc(x.target)}</td><td>${x.endpoints.map((e) => `<a href="${esc(e)}">${esc(e)}</a>`).join('<br>')}</td><td>${esc(x.paidUntil && new Date(Number(x.paidUntil) * 1000).toISOString())}</td><td>${esc(x.reason)}</td><td>${esc(last?.at)} ${esc(last?.cause)}</td></tr>`
    })
    .join('\n')
  return `<!doctype html><html><head><meta charset="utf-8"><meta http-equiv="refresh" content="5"><title>blueprint-operator</title>
<style>body{font:14px system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.4em .6em;text-align:left;vertical-align:top}
th{background:#f4f4f4}.st{font-weight:600}.active{color:#0a7d32}.scaled-to-zero{color:#a66b00}.refunded,.refunding{color:#b00020}.closed{color:#666}code{background:#f4f4f4;padding:.1em .3em}</style></head>
<body><h1>blueprint-operator</h1><p>operator <code>${esc(status.operatorId)}</code> · chain ${esc(status.chainId)} · cursor block ${esc((status.cursor as { blockNumber?: string } | undefined)?.blockNumber)} · ${services.length} service(s)</p>
<table><thead><tr><th>service</th><th>blueprint</th><th>state</th><th>tier</th><th>replicas</th><th>target</th><th>endpoints</th><th>paid until</th><th>reason</th><th>last change</th></tr></thead><tbody>
${rows || '<tr><td colspan="10">no services yet</td></tr>'}</tbody></table><p><a href="/api/services">/api/services</a> · <a href="/api/status">/api/status</a> · <a href="/metrics">/metrics</a></p></body></html>`
}

export async function startHttpServer(common: Common, p: StartHttpParameters): Promise<HttpServer> {
  const log = common.logger
  const redact = common.redact ?? ((t: string) => redactText(t))
  const send = (res: ServerResponse, code: number, body: unknown, type = 'application/json') => {
    // every URL in an answer (API, dashboard, metric labels) is redacted, and the configuration's secrets masked
    const text = redact(type === 'application/json' ? JSON.stringify(body, null, 1) : String(body))
    res.writeHead(code, { 'content-type': `${type}; charset=utf-8`, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' })
    res.end(text)
  }
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://localhost')
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, { error: 'method not allowed' })
    const services = Object.values(p.store.read().services).sort((a, b) => Number(BigInt(a.serviceId) - BigInt(b.serviceId)))
    const m = /^\/api\/services\/(\d+)$/.exec(url.pathname)
    if (url.pathname === '/healthz') return send(res, 200, { ok: true })
    if (url.pathname === '/readyz') {
      const st = p.status()
      return send(res, st.ready ? 200 : 503, { ready: st.ready })
    }
    if (url.pathname === '/metrics') return send(res, 200, common.metrics.render(), 'text/plain; version=0.0.4')
    if (url.pathname === '/api/services') return send(res, 200, services.map(summary))
    if (m) {
      const s = p.store.read().services[m[1]!]
      return s ? send(res, 200, s) : send(res, 404, { error: `no service ${m[1]}` })
    }
    if (url.pathname === '/api/status') return send(res, 200, p.status())
    if (url.pathname === '/') return send(res, 200, dashboard(services, p.status()), 'text/html')
    return send(res, 404, { error: 'not found' })
  }
  const server = createServer((req, res) => {
    try {
      handle(req, res)
    } catch (err) {
      log.error({ err }, 'http handler failed')
      if (!res.headersSent) send(res, 500, { error: 'internal error' })
    }
  })
  server.requestTimeout = 10_000
  server.headersTimeout = 5_000
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(p.port, p.host, () => resolve())
  })
  const addr = server.address() as AddressInfo
  const url = `http://${addr.address}:${addr.port}`
  log.info({ url }, 'http listening')
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}
