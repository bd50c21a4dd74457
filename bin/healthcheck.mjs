#!/usr/bin/env node
// Container HEALTHCHECK: exit 0 when the daemon's /healthz answers 200 within 4 s, 1 otherwise. The address is
// $BPO_HTTP_LISTEN (host:port; a wildcard host is reached on loopback), default 127.0.0.1:9464.
const listen = process.env.BPO_HTTP_LISTEN || '127.0.0.1:9464'
const i = listen.lastIndexOf(':')
let host = listen.slice(0, i)
if (host === '0.0.0.0' || host === '' || host === '::' || host === '[::]') host = '127.0.0.1'
const url = `http://${host}:${listen.slice(i + 1)}/healthz`
try {
  const res = await fetch(url, { signal: AbortSignal.timeout(4000) })
  if (!res.ok) throw new Error(`HTTP ${res.status}`)
  process.exit(0)
} catch (err) {
  console.error(`unhealthy: ${url}: ${err.message}`)
  process.exit(1)
}
