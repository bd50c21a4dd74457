/**
 * A fake ThreeFold grid proxy on 127.0.0.1: GET /nodes/{id}, GET /nodes/{id}/status and GET /farms answer with the
 * recorded bodies of ../shared/fixtures/threefold/ (node 1 of mainnet, Freefarm), per node id with the fields a test
 * overrides (status, farm, used resources...). Unknown nodes answer 404 like the real proxy. It also answers the two
 * reachability checks of grid_client's `connect` (GET /version, POST /graphql `__typename`).
 */
import { readFileSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'

const dir = new URL('../../../shared/fixtures/threefold/', import.meta.url)
const recordedNode: Record<string, unknown> = JSON.parse(readFileSync(new URL('node-get.json', dir), 'utf8'))
const recordedFarm: Record<string, unknown> = JSON.parse(readFileSync(new URL('farm.object.json', dir), 'utf8'))

export type FakeGridProxy = {
  url: string
  requests: string[]
  /** Add or change a node: the recorded record with these fields replaced. */
  setNode(nodeId: number, fields: Record<string, unknown>): void
  close(): Promise<void>
}

export async function startGridProxy(nodes: Record<number, Record<string, unknown>> = {}): Promise<FakeGridProxy> {
  const table = new Map<number, Record<string, unknown>>()
  const setNode = (id: number, fields: Record<string, unknown>) => table.set(id, { ...recordedNode, ...fields, nodeId: id })
  for (const [id, f] of Object.entries(nodes)) setNode(Number(id), f)
  const requests: string[] = []
  const server = createServer((req, res) => {
    requests.push(req.url ?? '')
    const url = new URL(req.url ?? '/', 'http://x')
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' })
      res.end(JSON.stringify(body))
    }
    const m = /^\/nodes\/(\d+)(\/status)?$/.exec(url.pathname)
    if (m) {
      const n = table.get(Number(m[1]))
      if (!n) return send(404, { error: `node ${m[1]} not found` })
      return send(200, m[2] ? { status: n.status } : n)
    }
    if (url.pathname === '/farms') return send(200, [recordedFarm])
    // not recorded: grid_client's connect only checks that GET /version answers 2xx, and that GraphQL answers
    // `query { __typename }` (the root type's name, per the GraphQL spec); served here so it reaches the RMB relay
    if (url.pathname === '/version') return send(200, { version: 'fake-grid-proxy' })
    if (url.pathname === '/graphql' && req.method === 'POST') return send(200, { data: { __typename: 'Query' } })
    send(404, { error: 'not found' })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    setNode,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}
