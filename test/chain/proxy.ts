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
