/**
 * A TCP relay in front of a node, to take the RPC "down" (connections refused) and bring it back on the same port.
 */
import { createServer, connect, type Server, type Socket } from 'node:net'

export type RpcRelay = { url: string; down(): Promise<void>; up(): Promise<void>; close(): Promise<void> }

export async function startRelay(target: { host: string; port: number }): Promise<RpcRelay> {
  let port = 0
  let server: Server | undefined
  const sockets = new Set<Socket>()
  const listen = () =>
    new Promise<void>((resolve, reject) => {
      const s = createServer((client) => {
        const upstream = connect(target.port, target.host)
        for (const x of [client, upstream]) {
          sockets.add(x)
          x.on('close', () => sockets.delete(x))
          x.on('error', () => x.destroy())
        }
        client.pipe(upstream).pipe(client)
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
    for (const x of sockets) x.destroy()
    if (s) await new Promise<void>((r) => s.close(() => r()))
  }
  await listen()
  return { url: `http://127.0.0.1:${port}`, down, up: listen, close: down }
}

/**
 * An HTTP JSON-RPC relay that refuses eth_getLogs over more than `maxRange` blocks with -32005 (limit exceeded), as
 * hosted nodes do.
 */
export async function startRangeLimitedRelay(targetUrl: string, maxRange: bigint): Promise<{ url: string; refused: number; close(): Promise<void> }> {
  const { createServer: createHttpServer } = await import('node:http')
  const state = { refused: 0 }
  const server = createHttpServer(async (req, res) => {
    const chunks: Buffer[] = []
    for await (const c of req) chunks.push(c as Buffer)
    const body = Buffer.concat(chunks).toString()
    const msg = JSON.parse(body) as { id: number; method: string; params: { fromBlock: string; toBlock: string }[] }
    if (msg.method === 'eth_getLogs') {
      const p = msg.params[0]!
      if (BigInt(p.toBlock) - BigInt(p.fromBlock) + 1n > maxRange) {
        state.refused++
        res.setHeader('content-type', 'application/json')
        res.end(JSON.stringify({ jsonrpc: '2.0', id: msg.id, error: { code: -32005, message: 'query exceeds the block range limit' } }))
        return
      }
    }
    const upstream = await fetch(targetUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
    res.setHeader('content-type', 'application/json')
    res.end(await upstream.text())
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  const port = (server.address() as { port: number }).port
  return {
    url: `http://127.0.0.1:${port}`,
    get refused() {
      return state.refused
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  }
}

/**
 * An HTTP JSON-RPC relay that lets a test change answers on their way back: `rewrite` gets the method, the params and
 * the node's answer (`{ result }` or `{ error }`) and returns the answer to pass on — e.g. a log shown as removed
 * while a range is read, a receipt without its logs, a simulation that succeeds where the node reverts.
 */
export type RpcAnswer = { result?: unknown; error?: { code: number; message: string; data?: unknown } }
export async function startRewritingRelay(targetUrl: string, rewrite: (method: string, answer: RpcAnswer, params: unknown[]) => RpcAnswer): Promise<{ url: string; close(): Promise<void> }> {
  const { createServer: createHttpServer } = await import('node:http')
  const server = createHttpServer(async (req, res) => {
    const chunks: Buffer[] = []
    for await (const c of req) chunks.push(c as Buffer)
    const body = Buffer.concat(chunks).toString()
    const upstream = (await (await fetch(targetUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body })).json()) as unknown
    const requests = JSON.parse(body) as { id: number; method: string; params?: unknown[] } | { id: number; method: string; params?: unknown[] }[]
    const request = (id: number) => (Array.isArray(requests) ? requests : [requests]).find((r) => r.id === id)
    const fix = (a: { jsonrpc: string; id: number } & RpcAnswer) => {
      const r = request(a.id)
      const { result, error } = rewrite(r?.method ?? '', 'error' in a ? { error: a.error! } : { result: a.result }, r?.params ?? [])
      return { jsonrpc: a.jsonrpc, id: a.id, ...(error ? { error } : { result }) }
    }
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify(Array.isArray(upstream) ? upstream.map(fix) : fix(upstream as { jsonrpc: string; id: number } & RpcAnswer)))
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  const port = (server.address() as { port: number }).port
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise<void>((r) => server.close(() => r())) }
}
