/**
 * A fake Hetzner Cloud API (/v1 JSON, the envelopes and object shapes of ../shared/fixtures/hetzner/) for the
 * undici client. Its running servers are real SSH hosts (test/fakes/fake-vm.ts) booted from the user data, with
 * attached volumes mounted at /mnt/HC_Volume_<id>; deleting a server kills its VM and its root disk, volumes stay.
 * Models label selectors, name uniqueness (uniqueness_error), pagination, resource_in_use, rate limits and
 * injected faults (resource_unavailable, rate_limit_exceeded, ...).
 */
import { readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startFakeVm, type FakeVm } from './fake-vm.js'

const FIXTURES = new URL('../../../shared/fixtures/hetzner/', import.meta.url)
const fixture = (name: string) => JSON.parse(readFileSync(new URL(name, FIXTURES), 'utf8')) as Record<string, unknown>

export type FakeServer = { id: number; name: string; status: string; labels: Record<string, string>; serverType: string; location: string; volumes: number[]; firewalls: number[]; userData: string; rootDisk: string; vm?: FakeVm; ip?: string }
export type FakeVolume = { id: number; name: string; labels: Record<string, string>; server: number | null; location: string; dir: string; size: number }
export type FakeFirewall = { id: number; name: string; labels: Record<string, string>; rules: unknown[] }
export type HetznerFault = { status: number; code: string; times?: number; headers?: Record<string, string> }

export type FakeHetzner = {
  url: string
  servers: Map<number, FakeServer>
  volumes: Map<number, FakeVolume>
  firewalls: Map<number, FakeFirewall>
  calls: string[]
  /** Answer the next call(s) whose "METHOD /path" matches `re` with an error. */
  fail(re: RegExp, f: HetznerFault): void
  /** Hourly net EUR price per server type and location (served by GET /pricing). */
  prices: { name: string; location: string; net: string }[]
  stop(): Promise<void>
}

export async function startFakeHetzner(p: { token: string; pageSize?: number; bootDelayMs?: number }): Promise<FakeHetzner> {
  const dir = await mkdtemp(join(tmpdir(), 'bpo-fake-hetzner-'))
  const servers = new Map<number, FakeServer>()
  const volumes = new Map<number, FakeVolume>()
  const firewalls = new Map<number, FakeFirewall>()
  const calls: string[] = []
  const faults: { re: RegExp; f: HetznerFault }[] = []
  const prices = [
    { name: 'cx22', location: 'fsn1', net: '0.0060' },
    { name: 'cx22', location: 'nbg1', net: '0.0060' },
  ]
  const pageSize = p.pageSize ?? 2
  let nextId = 1000 + Math.floor(Math.random() * 1000)
  const pending = new Set<Promise<unknown>>()
  const track = (x: Promise<unknown>) => {
    pending.add(x)
    void x.finally(() => pending.delete(x)).catch(() => undefined)
  }
  const serverTemplate = fixture('server.object.json')
  const actionTemplate = fixture('action.object.json')
  const action = (command: string, id: number, type: string) => ({ ...actionTemplate, id: nextId++, command, status: 'running', progress: 0, resources: [{ id, type }], error: null })

  class ApiErr extends Error {
    constructor(
      readonly status: number,
      readonly code: string,
      message: string,
      readonly headers: Record<string, string> = {},
    ) {
      super(message)
    }
  }
  const selectorOf = (q: URLSearchParams) =>
    (q.get('label_selector') ?? '')
      .split(',')
      .filter(Boolean)
      .map((x) => x.split('=') as [string, string])
  const matches = (labels: Record<string, string>, sel: [string, string][]) => sel.every(([k, v]) => labels[k] === v)
  function paged<T>(key: string, items: T[], q: URLSearchParams) {
    const per = Math.min(Number(q.get('per_page') ?? 25), pageSize)
    const page = Number(q.get('page') ?? 1)
    const last = Math.max(1, Math.ceil(items.length / per))
    return { [key]: items.slice((page - 1) * per, page * per), meta: { pagination: { page, per_page: per, previous_page: page > 1 ? page - 1 : null, next_page: page < last ? page + 1 : null, last_page: last, total_entries: items.length } } }
  }
  const serverJson = (s: FakeServer) => ({
    ...serverTemplate,
    id: s.id,
    name: s.name,
    status: s.status,
    labels: s.labels,
    volumes: s.volumes,
    public_net: { ...(serverTemplate.public_net as object), ipv4: s.ip ? { ip: s.ip, blocked: false, dns_ptr: 'static.example.com' } : null, firewalls: s.firewalls.map((id) => ({ id, status: 'applied' })) },
    server_type: { ...(serverTemplate.server_type as object), name: s.serverType },
  })
  const volumeJson = (v: FakeVolume) => ({ id: v.id, name: v.name, size: v.size, server: v.server, labels: v.labels, location: { name: v.location }, linux_device: `/dev/disk/by-id/scsi-0HC_Volume_${v.id}`, status: 'available', format: 'ext4' })
  const unique = (name: string, where: { name: string }[]) => {
    if (where.some((x) => x.name === name)) throw new ApiErr(409, 'uniqueness_error', `name '${name}' is already used`)
  }

  async function boot(s: FakeServer) {
    await new Promise((r) => setTimeout(r, p.bootDelayMs ?? 100))
    if (s.status !== 'initializing') return
    const vols = Object.fromEntries(s.volumes.map((id) => [String(id), volumes.get(id)!.dir]))
    const vm = await startFakeVm({ userData: s.userData, rootDisk: s.rootDisk, volumes: vols })
    if (s.status !== 'initializing') return void (await vm.stop())
    s.vm = vm
    s.ip = vm.address
    s.status = 'running'
  }
  async function remove(s: FakeServer) {
    s.status = 'deleting'
    const vm = s.vm
    s.vm = undefined
    await vm?.stop()
    await rm(s.rootDisk, { recursive: true, force: true })
    for (const id of s.volumes) {
      const v = volumes.get(id)
      if (v) v.server = null
    }
    await new Promise((r) => setTimeout(r, 200))
    servers.delete(s.id)
  }

  async function handle(method: string, path: string, q: URLSearchParams, body: Record<string, unknown>): Promise<[number, unknown]> {
    let m: RegExpExecArray | null
    if (method === 'GET' && path === '/v1/pricing') {
      const pricing = fixture('pricing.object.json')
      const names = [...new Set(prices.map((x) => x.name))]
      return [200, { pricing: { ...pricing, currency: 'EUR', server_types: names.map((name, i) => ({ id: i + 1, name, prices: prices.filter((x) => x.name === name).map((x) => ({ location: x.location, price_hourly: { net: x.net, gross: x.net }, price_monthly: { net: '0', gross: '0' } })) })) } }]
    }
    if (method === 'GET' && path === '/v1/servers') {
      const sel = selectorOf(q)
      const name = q.get('name')
      return [200, paged('servers', [...servers.values()].filter((s) => matches(s.labels, sel) && (!name || s.name === name)).map(serverJson), q)]
    }
    if (method === 'POST' && path === '/v1/servers') {
      const name = String(body.name ?? '')
      unique(name, [...servers.values()])
      if (!/^[a-z0-9-]+$/.test(name)) throw new ApiErr(400, 'invalid_input', 'invalid input in field name')
      const vols = ((body.volumes as number[] | undefined) ?? []).map((id) => {
        const v = volumes.get(id)
        if (!v) throw new ApiErr(404, 'not_found', `volume ${id} not found`)
        if (v.server !== null) throw new ApiErr(422, 'resource_in_use', `volume ${id} is attached`)
        return v
      })
      const s: FakeServer = {
        id: nextId++,
        name,
        status: 'initializing',
        labels: (body.labels as Record<string, string>) ?? {},
        serverType: String(body.server_type),
        location: String(body.location),
        volumes: vols.map((v) => v.id),
        firewalls: ((body.firewalls as { firewall: number }[] | undefined) ?? []).map((f) => f.firewall),
        userData: String(body.user_data ?? ''),
        rootDisk: join(dir, `server-${name}`),
      }
      for (const v of vols) v.server = s.id
      servers.set(s.id, s)
      track(boot(s).catch(() => (s.status = 'off')))
      return [201, { server: serverJson(s), action: action('create_server', s.id, 'server'), next_actions: [action('start_server', s.id, 'server')], root_password: null }]
    }
    if ((m = /^\/v1\/servers\/(\d+)$/.exec(path))) {
      const s = servers.get(Number(m[1]))
      if (!s) throw new ApiErr(404, 'not_found', `server with ID '${m[1]}' not found`)
      if (method === 'GET') return [200, { server: serverJson(s) }]
      if (method === 'DELETE') {
        if (s.status !== 'deleting') track(remove(s))
        return [200, { action: action('delete_server', s.id, 'server') }]
      }
    }
    if (method === 'GET' && path === '/v1/volumes') {
      const sel = selectorOf(q)
      const name = q.get('name')
      return [200, paged('volumes', [...volumes.values()].filter((v) => matches(v.labels, sel) && (!name || v.name === name)).map(volumeJson), q)]
    }
    if (method === 'POST' && path === '/v1/volumes') {
      const name = String(body.name ?? '')
      unique(name, [...volumes.values()])
      const v: FakeVolume = { id: nextId++, name, labels: (body.labels as Record<string, string>) ?? {}, server: null, location: String(body.location), dir: join(dir, `volume-${name}`), size: Number(body.size) }
      volumes.set(v.id, v)
      return [201, { volume: volumeJson(v), action: action('create_volume', v.id, 'volume'), next_actions: [] }]
    }
    if ((m = /^\/v1\/volumes\/(\d+)$/.exec(path)) && method === 'DELETE') {
      const v = volumes.get(Number(m[1]))
      if (!v) throw new ApiErr(404, 'not_found', `volume with ID '${m[1]}' not found`)
      if (v.server !== null) throw new ApiErr(423, 'locked', 'volume is attached to a server')
      volumes.delete(v.id)
      await rm(v.dir, { recursive: true, force: true })
      return [204, undefined]
    }
    if (method === 'GET' && path === '/v1/firewalls') {
      const sel = selectorOf(q)
      const name = q.get('name')
      return [200, paged('firewalls', [...firewalls.values()].filter((f) => matches(f.labels, sel) && (!name || f.name === name)), q)]
    }
    if (method === 'POST' && path === '/v1/firewalls') {
      const name = String(body.name ?? '')
      unique(name, [...firewalls.values()])
      const f: FakeFirewall = { id: nextId++, name, labels: (body.labels as Record<string, string>) ?? {}, rules: (body.rules as unknown[]) ?? [] }
      firewalls.set(f.id, f)
      return [201, { firewall: f, actions: [] }]
    }
    if ((m = /^\/v1\/firewalls\/(\d+)$/.exec(path)) && method === 'DELETE') {
      const f = firewalls.get(Number(m[1]))
      if (!f) throw new ApiErr(404, 'not_found', `firewall with ID '${m[1]}' not found`)
      if ([...servers.values()].some((s) => s.firewalls.includes(f.id))) throw new ApiErr(422, 'resource_in_use', 'firewall is still applied to a server')
      firewalls.delete(f.id)
      return [204, undefined]
    }
    throw new ApiErr(404, 'not_found', `${method} ${path} not found`)
  }

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      void (async () => {
        const url = new URL(req.url ?? '/', 'http://x')
        const method = req.method ?? 'GET'
        calls.push(`${method} ${url.pathname}`)
        const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
          res.writeHead(status, { ...(status === 204 ? {} : { 'content-type': 'application/json' }), 'ratelimit-limit': '3600', 'ratelimit-remaining': '3599', ...headers })
          res.end(status === 204 ? undefined : JSON.stringify(body))
        }
        try {
          if (req.headers.authorization !== `Bearer ${p.token}`) throw new ApiErr(401, 'unauthorized', 'unable to authenticate')
          const fault = faults.find((x) => x.re.test(`${method} ${url.pathname}`))
          if (fault) {
            fault.f.times = (fault.f.times ?? 1) - 1
            if (fault.f.times <= 0) faults.splice(faults.indexOf(fault), 1)
            throw new ApiErr(fault.f.status, fault.f.code, `${fault.f.code} (injected)`, fault.f.headers)
          }
          const text = Buffer.concat(chunks).toString('utf8')
          const [status, body] = await handle(method, url.pathname, url.searchParams, text ? (JSON.parse(text) as Record<string, unknown>) : {})
          send(status, body)
        } catch (err) {
          if (err instanceof ApiErr) {
            const envelope = err.code === 'invalid_input' ? fixture('error-invalid-input.json') : { error: { code: err.code, message: err.message, details: {} } }
            send(err.status, envelope, err.headers)
          } else send(500, { error: { code: 'server_error', message: (err as Error).message, details: {} } })
        }
      })()
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const addr = server.address()
  return {
    url: `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}/v1`,
    servers,
    volumes,
    firewalls,
    calls,
    prices,
    fail: (re, f) => void faults.push({ re, f }),
    async stop() {
      await Promise.allSettled([...pending])
      await Promise.all([...servers.values()].map((s) => s.vm?.stop()))
      await new Promise<void>((r) => server.close(() => r()))
      server.closeAllConnections()
      await rm(dir, { recursive: true, force: true })
    },
  }
}
