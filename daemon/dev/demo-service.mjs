#!/usr/bin/env node
// The demo blueprint's native artifact: a dependency-free HTTP service. It reads its identity from the environment the
// provisioner sets, and keeps two counters in DATA_DIR (starts, requests) so a scale-to-zero and back shows the data
// survived.
import { createServer } from 'node:http'
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

const port = Number(process.env.PORT ?? 8080)
const host = process.env.HOST || '127.0.0.1'
const dataDir = process.env.DATA_DIR || ''
const startedAt = Date.now()

const counterPath = (name) => join(dataDir, `${name}.count`)

function readCounter(name) {
  if (!dataDir) return 0
  try {
    const n = Number.parseInt(readFileSync(counterPath(name), 'utf8'), 10)
    return Number.isFinite(n) ? n : 0
  } catch {
    return 0
  }
}

function bumpCounter(name) {
  const next = readCounter(name) + 1
  if (!dataDir) return next
  // write-then-rename so a reader never sees a half-written number (replicas share the directory)
  const tmp = `${counterPath(name)}.${process.pid}.tmp`
  writeFileSync(tmp, String(next))
  renameSync(tmp, counterPath(name))
  return next
}

if (dataDir) mkdirSync(dataDir, { recursive: true })
const starts = bumpCounter('starts')

/**
 * Spin for `ms` milliseconds of this process's CPU time (not wall time: on a busy machine the two differ), yielding to
 * the event loop every 20 ms of it; resolves with the CPU ms spent.
 */
async function burn(ms) {
  const cpuMs = () => {
    const u = process.cpuUsage()
    return (u.user + u.system) / 1000
  }
  const start = cpuMs()
  while (cpuMs() - start < ms) {
    const sliceEnd = Math.min(start + ms, cpuMs() + 20)
    while (cpuMs() < sliceEnd) {
      // busy
    }
    await new Promise((r) => setImmediate(r))
  }
  return Math.round(cpuMs() - start)
}

const server = createServer((req, res) => {
  const path = (req.url ?? '/').split('?')[0]
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD' }).end()
    return
  }
  if (path === '/burn') {
    // load for autoscaling tests and demos: ?ms=N (default 1000, at most 60000) of CPU time in 20 ms slices, so the
    // health path keeps answering between slices
    const ms = Math.min(60_000, Math.max(0, Number(new URL(req.url ?? '/', 'http://x').searchParams.get('ms') ?? 1000) || 0))
    burn(ms).then((burnedMs) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ burnedMs }) + '\n'))
    return
  }
  if (path === '/healthz') {
    res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n')
    return
  }
  if (path === '/') {
    const body = JSON.stringify({
      service: process.env.SERVICE_ID ?? null,
      blueprint: process.env.BLUEPRINT_ID ?? null,
      deployment: process.env.DEPLOYMENT_ID ?? null,
      replica: process.env.REPLICA_INDEX === undefined ? null : Number(process.env.REPLICA_INDEX),
      uptime: (Date.now() - startedAt) / 1000,
      starts: readCounter('starts'),
      requests: req.method === 'GET' ? bumpCounter('requests') : readCounter('requests'),
      pid: process.pid,
    })
    res.writeHead(200, { 'content-type': 'application/json' }).end(body + '\n')
    return
  }
  res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n')
})

server.on('error', (err) => {
  console.error(`demo-service: ${err.message}`)
  process.exit(1)
})

server.listen(port, host, () => {
  console.log(`demo-service listening on http://${host}:${port} (deployment ${process.env.DEPLOYMENT_ID ?? '-'}, replica ${process.env.REPLICA_INDEX ?? '-'}, start ${starts})`)
})

const stop = (sig) => {
  console.log(`demo-service: ${sig}, closing`)
  server.close(() => process.exit(0))
  server.closeAllConnections?.()
  setTimeout(() => process.exit(0), 2000).unref()
}
process.on('SIGTERM', () => stop('SIGTERM'))
process.on('SIGINT', () => stop('SIGINT'))
