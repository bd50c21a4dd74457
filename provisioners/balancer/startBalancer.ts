/**
 * A TCP balancer: one listening port in front of a deployment's replicas. Each new connection goes to the next
 * backend in round-robin order; a backend that refuses or does not connect in time is skipped for the next one
 * (and avoided for `downMs`). When every backend refused (a replica restarting, a scale-up not yet listening), the
 * client is held and the backends are tried again every `retryEveryMs` for up to `holdMs`, so a connection that
 * arrives during a restart is served late rather than dropped; with no backend at all (scaled to zero) it is closed
 * at once. Backends can be replaced at any time; connections already piped keep their backend.
 */
import { connect, createServer, type Server, type Socket } from 'node:net'
import { ProvisionError } from '../errors.js'

export type Backend = { host: string; port: number }

export type StartBalancerParameters = {
  /** Address to listen on. */
  host: string
  /** Port to listen on (0: any free port). */
  port: number
  /** Initial backends. Default none. */
  backends?: readonly Backend[]
  /** How long one backend may take to accept a connection before the next is tried, ms. Default 3_000. */
  connectTimeoutMs?: number
  /** How long a client is held, trying the backends again, when all of them refused, ms. Default 3_000. */
  holdMs?: number
  /** Pause between two rounds over the backends while a client is held, ms. Default 200. */
  retryEveryMs?: number
  /** How long a backend that failed is tried only after the others, ms. Default 2_000. */
  downMs?: number
}

export type BalancerStats = { accepted: number; forwarded: number; failedOver: number; rejected: number }

export type Balancer = {
  readonly host: string
  readonly port: number
  /** Replace the backends (new connections only); they count as healthy again. */
  setBackends(backends: readonly Backend[]): void
  backends(): readonly Backend[]
  stats(): BalancerStats
  /** Stop listening and drop every open connection. */
  close(): Promise<void>
}

const keyOf = (b: Backend) => `${b.host}:${b.port}`

/** Listen on `host:port` and balance over the backends. Throws ProvisionError `ENDPOINT_PORT_UNAVAILABLE` when the port cannot be bound. */
export async function startBalancer(p: StartBalancerParameters): Promise<Balancer> {
  const connectTimeoutMs = p.connectTimeoutMs ?? 3_000
  const downMs = p.downMs ?? 2_000
  const holdMs = p.holdMs ?? 3_000
  const retryEveryMs = p.retryEveryMs ?? 200
  let list: Backend[] = [...(p.backends ?? [])]
  let next = 0
  const downUntil = new Map<string, number>()
  const open = new Set<Socket>()
  const stats: BalancerStats = { accepted: 0, forwarded: 0, failedOver: 0, rejected: 0 }

  /** This connection's order of backends: round robin, those that failed lately last. */
  function order(): Backend[] {
    if (!list.length) return []
    const start = next++ % list.length
    const rr = list.map((_, i) => list[(start + i) % list.length]!)
    const now = Date.now()
    const up = rr.filter((b) => (downUntil.get(keyOf(b)) ?? 0) <= now)
    return [...up, ...rr.filter((b) => !up.includes(b))]
  }

  function onClient(client: Socket): void {
    stats.accepted++
    open.add(client)
    client.on('close', () => open.delete(client))
    client.on('error', () => client.destroy())
    const heldUntil = Date.now() + holdMs
    let candidates = order()
    let upstream: Socket | undefined
    let retry: NodeJS.Timeout | undefined
    client.once('close', () => {
      upstream?.destroy()
      clearTimeout(retry)
    })
    const attempt = (i: number): void => {
      if (client.destroyed) return
      const b = candidates[i]
      if (!b) {
        // every backend refused: hold the client for another round while there are backends and time left
        if (list.length && Date.now() + retryEveryMs < heldUntil) {
          retry = setTimeout(() => {
            candidates = order()
            attempt(0)
          }, retryEveryMs)
          return
        }
        stats.rejected++
        client.destroy()
        return
      }
      if (i > 0) stats.failedOver++
      const s = connect({ host: b.host, port: b.port })
      upstream = s
      open.add(s)
      s.on('close', () => open.delete(s))
      s.setTimeout(connectTimeoutMs)
      const fail = () => {
        s.destroy()
        downUntil.set(keyOf(b), Date.now() + downMs)
        attempt(i + 1)
      }
      s.once('timeout', fail)
      s.once('error', fail)
      s.once('connect', () => {
        s.removeListener('timeout', fail)
        s.removeListener('error', fail)
        s.setTimeout(0)
        downUntil.delete(keyOf(b))
        stats.forwarded++
        s.on('error', () => client.destroy())
        s.on('close', () => client.destroy())
        client.pipe(s)
        s.pipe(client)
      })
    }
    attempt(0)
  }

  const server: Server = createServer({ pauseOnConnect: false }, onClient)
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(new ProvisionError(`cannot listen on ${p.host}:${p.port}: ${err.code ?? err.message}`, { code: 'ENDPOINT_PORT_UNAVAILABLE', retryable: true, cause: err })),
    )
    server.listen({ host: p.host, port: p.port, exclusive: true }, () => resolve())
  })
  server.on('error', () => undefined)
  // the balancer never keeps a process alive on its own (the daemon has its own reasons to live)
  server.unref()
  const port = (server.address() as { port: number }).port

  return {
    host: p.host,
    port,
    setBackends(backends) {
      // the caller hands over backends it has just seen healthy: earlier failures no longer count
      list = [...backends]
      downUntil.clear()
    },
    backends: () => [...list],
    stats: () => ({ ...stats }),
    close() {
      return new Promise<void>((resolve) => {
        server.close(() => resolve())
        for (const s of open) s.destroy()
      })
    },
  }
}
