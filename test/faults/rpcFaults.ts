/**
 * A JSON-RPC HTTP proxy in front of a real node that a test switches between faults: `outage` (nothing listens:
 * connections refused), `reset` (the connection is cut when a request arrives), `429` (rate limited, with
 * Retry-After), `slow` (answers after `slowMs`, past the client's timeout), `wrong-chain` (the node claims another
 * chain id) and `pass`. Counts the requests it spoiled.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'

export type RpcFault = 'pass' | 'outage' | 'reset' | '429' | 'slow' | 'wrong-chain'

export type RpcFaultProxy = {
  url: string
  set(fault: RpcFault): Promise<void>
  /** Requests answered with a fault (or refused while down: counted per `set('outage')`). */
  readonly spoiled: number
  close(): Promise<void>
}

export async function startRpcFaultProxy(targetUrl: string, o: { slowMs?: number; wrongChainId?: number } = {}): Promise<RpcFaultProxy> {
  const slowMs = o.slowMs ?? 4_000
  const wrongChain = `0x${(o.wrongChainId ?? 1).toString(16)}`
  let fault: RpcFault = 'pass'
  let spoiled = 0
  let port = 0
  let server: Server | undefined
  const sockets = new Set<Socket>()

  const forward = async (body: string) => {
    const r = await fetch(targetUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
    return r.text()
  }
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = []
    for await (const c of req) chunks.push(c as Buffer)
    const body = Buffer.concat(chunks).toString()
    const now = fault
    if (now === 'reset') {
      spoiled++
      req.socket.destroy()
      return
    }
    if (now === '429') {
      spoiled++
      res.writeHead(429, { 'content-type': 'text/plain', 'retry-after': '1' }).end('Too Many Requests')
      return
    }
    if (now === 'slow') {
      spoiled++
      await new Promise((r) => setTimeout(r, slowMs))
    }
    let answer = await forward(body)
    if (now === 'wrong-chain' && body.includes('eth_chainId')) {
      spoiled++
      const requests = JSON.parse(body) as { id: number; method: string } | { id: number; method: string }[]
      const ids = new Set((Array.isArray(requests) ? requests : [requests]).filter((r) => r.method === 'eth_chainId').map((r) => r.id))
      const parsed = JSON.parse(answer) as { id: number; result?: unknown } | { id: number; result?: unknown }[]
      const fix = (a: { id: number; result?: unknown }) => (ids.has(a.id) ? { ...a, result: wrongChain } : a)
      answer = JSON.stringify(Array.isArray(parsed) ? parsed.map(fix) : fix(parsed))
    }
    if (!res.destroyed) res.writeHead(200, { 'content-type': 'application/json' }).end(answer)
  }
  const up = () =>
    new Promise<void>((resolve, reject) => {
      const s = createServer((req, res) => void handle(req, res).catch(() => res.destroy()))
      s.on('connection', (c) => {
        sockets.add(c)
        c.on('close', () => sockets.delete(c))
      })
      s.once('error', reject)
      s.listen(port, '127.0.0.1', () => {
        port = (s.address() as { port: number }).port
        server = s
        resolve()
      })
    })
  const down = async () => {
    const s = server
    server = undefined
    for (const c of sockets) c.destroy()
    if (s) await new Promise<void>((r) => s.close(() => r()))
  }
  await up()
  return {
    url: `http://127.0.0.1:${port}`,
    async set(next) {
      if (next === 'outage' && fault !== 'outage') {
        spoiled++
        await down()
      } else if (next !== 'outage' && fault === 'outage') await up()
      fault = next
    },
    get spoiled() {
      return spoiled
    },
    close: down,
  }
}
