/**
 * A fake of the public price sources: a local HTTP server (127.0.0.1, OS-chosen port) that serves the recorded
 * responses in ../shared/fixtures/pricing/ under the paths the real sites use, so fetchers and the catalog are
 * tested without the network. Routes can be overridden (status, garbage, a shrunk body) to inject faults.
 */
import { readFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** Directory of the recorded pricing data. */
export const pricingFixturesDir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'shared', 'fixtures', 'pricing')

/** Read one recording as text. */
export const fixture = (name: string) => readFileSync(join(pricingFixturesDir, name), 'utf8')

export type FakeResponse = { status?: number; body: string; contentType?: string; delayMs?: number }
export type FakeRoute = FakeResponse | ((url: URL, req: IncomingMessage) => FakeResponse)

export type FakePriceSources = {
  /** Base URL, e.g. http://127.0.0.1:43125 */
  url: string
  /** Paths (with query) of every request received, in order. */
  requests: string[]
  /** Replace the answer of a path (exact pathname). */
  route(pathname: string, r: FakeRoute): void
  /** Restore the recorded answers. */
  reset(): void
  close(): Promise<void>
}

const csvRows = (text: string) => text.replace(/\r?\n$/, '').split(/\r?\n/).slice(1)

/** Start the fake; the default routes serve the recordings. */
export async function startFakePriceSources(): Promise<FakePriceSources> {
  let base = ''
  const defaults = (): Map<string, FakeRoute> => {
    const awsPart0 = fixture('aws-vms-v8.part0.csv')
    const aws = `${awsPart0.replace(/\n?$/, '\n')}${csvRows(fixture('aws-vms-v8.part2.csv')).join('\n')}\n`
    const csv = (body: string): FakeResponse => ({ body, contentType: 'text/csv' })
    const json = (body: string): FakeResponse => ({ body, contentType: 'application/json' })
    const vultr = JSON.parse(fixture('vultr-plans-api.fixture.json')) as { plans: unknown[] }
    return new Map<string, FakeRoute>([
      ['/skypilot/v8/aws/vms.csv', csv(aws)],
      ['/skypilot/v8/gcp/vms.csv', csv(fixture('gcp-vms-v8.part2.csv'))],
      ['/skypilot/v6/azure/vms.csv', csv(fixture('azure-vms-v6.part0.csv'))],
      ['/skypilot/v6/do/vms.csv', csv(fixture('do-vms-v6.csv'))],
      ['/skypilot/v8/lambda/vms.csv', csv(fixture('lambda-vms-v8.part0.csv'))],
      ['/skypilot/v8/runpod/vms.csv', csv(fixture('runpod-vms-v8.part0.csv'))],
      [
        '/azure/api/retail/prices',
        (url) => {
          // page 1 is the B1s recording; its NextPageLink leads to page 2, the D2s v3 recording
          if (url.searchParams.get('$skip') === '100') return json(fixture('azure-retail-prices-api.sample.json'))
          const page = JSON.parse(fixture('azure-retail-prices.standard_b1s_eastus.json'))
          page.NextPageLink = `${base}/azure/api/retail/prices?api-version=2023-01-01-preview&$skip=100`
          return json(JSON.stringify(page))
        },
      ],
      ['/vantage/instances.json', json(fixture('vantage-aws-instances.sample.json'))],
      [
        '/vultr/v2/plans',
        (url) => {
          // one plan per page, linked by cursor, as the API pages
          const cursor = url.searchParams.get('cursor')
          const i = cursor ? Number(cursor.replace('page-', '')) : 0
          const next = i + 1 < vultr.plans.length ? `page-${i + 1}` : ''
          return json(JSON.stringify({ plans: [vultr.plans[i]], meta: { total: vultr.plans.length, links: { next, prev: '' } } }))
        },
      ],
      ['/hetzner/live_data_prices.json', json(fixture('hetzner-site-price-feed.fixture.json'))],
      ['/hetzner/cloud/regular-performance/', { body: fixture('hetzner-cloud-matrix-row.fixture.html'), contentType: 'text/html' }],
      ['/gridproxy/nodes', (url) => json(url.searchParams.get('page') === '1' || !url.searchParams.get('page') ? fixture('threefold-gridproxy-nodes.devnet-node1.json') : '[]')],
      ['/gridproxy/farms', (url) => json(url.searchParams.get('page') === '1' || !url.searchParams.get('page') ? fixture('threefold-gridproxy-farms.freefarm.json') : '[]')],
      ['/horizon/paths/strict-receive', json(fixture('stellar-horizon-tft-strict-receive.fixture.json'))],
    ])
  }
  let routes = defaults()
  const requests: string[] = []
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', base)
    requests.push(`${url.pathname}${url.search}`)
    const route = routes.get(url.pathname)
    if (!route) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found')
      return
    }
    const r = typeof route === 'function' ? route(url, req) : route
    const send = () => res.writeHead(r.status ?? 200, { 'content-type': r.contentType ?? 'text/plain' }).end(r.body)
    if (r.delayMs) {
      const t = setTimeout(send, r.delayMs)
      res.on('close', () => clearTimeout(t))
    } else send()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return {
    url: base,
    requests,
    route: (pathname, r) => void routes.set(pathname, r),
    reset: () => void (routes = defaults()),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
