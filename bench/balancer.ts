/**
 * What the local target's stable endpoint costs (provisioners/balancer/startBalancer.ts): HTTP GETs on a fresh
 * connection each (the balancer picks a backend per connection), straight to one backend vs through the balancer
 * over three backends, sequential and 32 at a time. Prints requests/s and the median latency of each.
 * Run: `npm run bench -- balancer` or `node bin/run-ts.mjs bench/balancer.ts [requests]`.
 */
import { createServer, get, type Server } from 'node:http'
import { startBalancer } from '../provisioners/balancer/startBalancer.js'

const N = Number(process.argv[2] ?? 2000)

function listen(s: Server): Promise<number> {
  return new Promise((r) => s.listen({ host: '127.0.0.1', port: 0 }, () => r((s.address() as { port: number }).port)))
}

function once(port: number): Promise<number> {
  const t0 = process.hrtime.bigint()
  return new Promise((resolve, reject) => {
    const req = get({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
      res.resume()
      res.on('end', () => resolve(Number(process.hrtime.bigint() - t0) / 1e6))
    })
    req.on('error', reject)
  })
}

async function run(port: number, concurrency: number): Promise<{ rps: number; p50: number }> {
  const lat: number[] = []
  let next = 0
  const t0 = performance.now()
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next++ < N) lat.push(await once(port))
    }),
  )
  const s = (performance.now() - t0) / 1000
  lat.sort((a, b) => a - b)
  return { rps: Math.round(N / s), p50: Number(lat[Math.floor(lat.length / 2)]!.toFixed(3)) }
}

const servers = [0, 1, 2].map((i) => createServer((_, res) => res.end(`{"replica":${i}}`)))
const ports = await Promise.all(servers.map(listen))
const lb = await startBalancer({ host: '127.0.0.1', port: 0, backends: ports.map((port) => ({ host: '127.0.0.1', port })) })
for (const c of [1, 32]) {
  const direct = await run(ports[0]!, c)
  const balanced = await run(lb.port, c)
  console.log(`balancer: concurrency=${c} requests=${N} direct_rps=${direct.rps} direct_p50_ms=${direct.p50} balanced_rps=${balanced.rps} balanced_p50_ms=${balanced.p50}`)
}
console.log(`balancer: stats ${JSON.stringify(lb.stats())}`)
await lb.close()
for (const s of servers) await new Promise((r) => s.close(r))
