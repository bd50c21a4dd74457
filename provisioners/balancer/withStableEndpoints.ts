/**
 * A stable endpoint per deployment for a target whose replicas each listen on their own port (local): one port per
 * deployment, chosen deterministically from the target's range, recorded durably, with a balancer in this process
 * over the replicas that are ready. The wrapped provisioner's status then reports that one endpoint (the replicas'
 * own URLs move to `replicaEndpoints`). The port is kept while the deployment is scaled to zero (connections are
 * closed at once) and released at destroy; a restarted daemon listens on the same port again.
 */
import { createHash, randomBytes } from 'node:crypto'
import { mkdir, open, readFile, readdir, rename, rm } from 'node:fs/promises'
import { join } from 'node:path'
import type { Common } from '../../core/common.js'
import { ProvisionError } from '../errors.js'
import type { DeploymentStatus, OwnedResource, Provisioner } from '../types.js'
import { startBalancer, type Backend, type Balancer } from './startBalancer.js'

export type WithStableEndpointsParameters = {
  /** Holds one `<deploymentId>.json` per deployment (the port). */
  stateDir: string
  operatorId: string
  /** Address the balancer listens on (e.g. 127.0.0.1, or 0.0.0.0 to be reached from outside). */
  listenHost: string
  /** Host put in the reported URL. */
  urlHost: string
  /** Ports to choose from, inclusive. */
  portRange: [number, number]
  /** Ports the wrapped provisioner has handed out to replicas (never chosen even while nothing listens on them). */
  usedPorts?: () => Promise<Iterable<number>>
  /** Passed to the balancer. */
  connectTimeoutMs?: number
}

const DEPLOYMENT_ID = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/

type EndpointRecord = { version: 1; deploymentId: string; operatorId: string; port: number; createdAt: string }

type Shared = { balancer: Promise<Balancer>; users: Set<symbol> }
// A port is bound once per process, whatever number of provisioner instances (a reopened one, a test's second
// instance) serve the same state directory: they share the listener, which closes when the last one lets go.
const listeners = new Map<string, Shared>()

/** Wrap `inner` so each deployment has one stable endpoint. */
export function withStableEndpoints<P extends Provisioner>(common: Common, inner: P, p: WithStableEndpointsParameters): P {
  const log = common.logger
  let closed = false
  const me = Symbol('provisioner')
  const held = new Set<string>()
  const [lo, hi] = p.portRange
  const urlOf = (port: number) => `http://${p.urlHost.includes(':') ? `[${p.urlHost}]` : p.urlHost}:${port}`
  const recordPath = (id: string) => join(p.stateDir, `${id}.json`)
  const keyOf = (id: string, port: number) => `${p.stateDir}\0${id}\0${port}`

  async function readRecord(id: string): Promise<EndpointRecord | undefined> {
    try {
      const r = JSON.parse(await readFile(recordPath(id), 'utf8')) as EndpointRecord
      return r.operatorId === p.operatorId && r.deploymentId === id && Number.isInteger(r.port) ? r : undefined
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw err
    }
  }

  async function records(): Promise<EndpointRecord[]> {
    const names = await readdir(p.stateDir).catch(() => [] as string[])
    const out: EndpointRecord[] = []
    for (const n of names) {
      if (!n.endsWith('.json')) continue
      const r = await readRecord(n.slice(0, -5)).catch(() => undefined)
      if (r) out.push(r)
    }
    return out
  }

  async function writeRecord(r: EndpointRecord): Promise<void> {
    await mkdir(p.stateDir, { recursive: true })
    const path = recordPath(r.deploymentId)
    const tmp = `${path}.${randomBytes(4).toString('hex')}.tmp`
    const fh = await open(tmp, 'w', 0o600)
    try {
      await fh.writeFile(JSON.stringify(r, null, 2))
      await fh.sync()
    } finally {
      await fh.close()
    }
    await rename(tmp, path)
    const dh = await open(p.stateDir, 'r')
    try {
      await dh.sync()
    } finally {
      await dh.close()
    }
  }

  async function acquire(id: string, port: number): Promise<Balancer> {
    const key = keyOf(id, port)
    let s = listeners.get(key)
    if (!s) {
      s = { balancer: startBalancer({ host: p.listenHost, port, connectTimeoutMs: p.connectTimeoutMs }), users: new Set() }
      listeners.set(key, s)
      s.balancer.catch(() => listeners.get(key) === s && listeners.delete(key))
    }
    s.users.add(me)
    held.add(key)
    return s.balancer
  }

  async function release(key: string, force: boolean): Promise<void> {
    held.delete(key)
    const s = listeners.get(key)
    if (!s) return
    s.users.delete(me)
    if (!force && s.users.size) return
    listeners.delete(key)
    await (await s.balancer.catch(() => undefined))?.close()
  }

  /** A port for a new deployment: from a hash of its id, the first one free and used by nothing we know of. */
  async function allocate(id: string): Promise<Balancer> {
    const taken = new Set<number>([...(await records()).map((r) => r.port), ...((await p.usedPorts?.()) ?? [])])
    const span = hi - lo + 1
    const start = createHash('sha256').update(`${p.operatorId}/${id}`).digest().readUInt32BE(0) % span
    for (let k = 0; k < span; k++) {
      const port = lo + ((start + k) % span)
      if (taken.has(port)) continue
      let b: Balancer
      try {
        b = await acquire(id, port)
      } catch {
        continue
      }
      await writeRecord({ version: 1, deploymentId: id, operatorId: p.operatorId, port, createdAt: new Date().toISOString() })
      log.info({ deploymentId: id, port }, 'stable endpoint port chosen')
      return b
    }
    throw new ProvisionError(`no free port in ${lo}-${hi} for the stable endpoint of ${id}`, { code: 'NO_FREE_PORT', retryable: true })
  }

  // one allocation per deployment at a time
  const pending = new Map<string, Promise<Balancer | undefined>>()
  /** The deployment's balancer, listening; created (port chosen and recorded) only when `create`. */
  function ensure(id: string, create: boolean): Promise<Balancer | undefined> {
    const run = async (): Promise<Balancer | undefined> => {
      const r = await readRecord(id)
      if (!r) return create ? allocate(id) : undefined
      try {
        return await acquire(id, r.port)
      } catch (err) {
        // held by some other process: the recorded endpoint is not ours to serve now; try again on the next call
        log.warn({ deploymentId: id, port: r.port, err }, 'stable endpoint port is busy')
        return undefined
      }
    }
    const prev = pending.get(id) ?? Promise.resolve(undefined)
    const mine = prev.catch(() => undefined).then(run)
    pending.set(id, mine)
    void mine.finally(() => pending.get(id) === mine && pending.delete(id)).catch(() => undefined)
    return mine
  }

  async function drop(id: string): Promise<void> {
    const r = await readRecord(id).catch(() => undefined)
    for (const key of [...listeners.keys()]) if (key.startsWith(`${p.stateDir}\0${id}\0`)) await release(key, true)
    await rm(recordPath(id), { force: true })
    if (r) log.info({ deploymentId: id, port: r.port }, 'stable endpoint released')
  }

  const backendOf = (url: string): Backend => {
    const u = new URL(url)
    return { host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port) }
  }

  async function present(id: string, st: DeploymentStatus, b: Balancer | undefined): Promise<DeploymentStatus> {
    if (!st.exists) {
      await drop(id)
      return st
    }
    if (!b) {
      const r = await readRecord(id).catch(() => undefined)
      return r ? { ...st, detail: [st.detail, `stable port ${r.port} is held by another process`].filter(Boolean).join('; ') } : st
    }
    b.setBackends(st.endpoints.map(backendOf))
    return { ...st, endpoints: st.endpoints.length ? [urlOf(b.port)] : [], replicaEndpoints: st.endpoints }
  }

  // a restarted daemon listens on every recorded port at its first call (the loop's first status), before that call
  // could give a replica one of them; not at construction, so a CLI that only builds the targets binds nothing
  let started: Promise<unknown> | undefined
  const initOnce = () =>
    (started ??= records()
      .then((rs) => Promise.all(rs.map((r) => ensure(r.deploymentId, false))))
      .catch((err) => log.warn({ err }, 'stable endpoints: could not read the records')))

  /** Run `fn` with the balancer in place first (its port stays ours), then present the status it returns. */
  async function around(id: string, create: boolean, fn: () => Promise<DeploymentStatus>): Promise<DeploymentStatus> {
    // the wrapped provisioner rejects what is invalid or closed; nothing of ours is touched for it
    if (closed || typeof id !== 'string' || !DEPLOYMENT_ID.test(id)) return fn()
    await initOnce()
    const before = await ensure(id, create)
    let st: DeploymentStatus
    try {
      st = await fn()
    } catch (err) {
      if (create) {
        // a provision that left nothing behind releases the port it reserved
        const now = await inner.status(id).catch(() => undefined)
        if (now && !now.exists) await drop(id)
      }
      throw err
    }
    const b = before ?? (st.exists ? await ensure(id, true) : undefined)
    return present(id, st, b)
  }

  const wrapped: Provisioner = {
    id: inner.id,
    sourceKinds: inner.sourceKinds,
    provision: (req, o) => around(req?.deploymentId, true, () => inner.provision(req, o)),
    status: (id, o) => around(id, false, () => inner.status(id, o)),
    scale: (id, replicas, o) => around(id, false, () => inner.scale(id, replicas, o)),
    restart: (id, o) => around(id, false, () => inner.restart(id, o)),
    async destroy(id, o) {
      await initOnce()
      await inner.destroy(id, o)
      if (typeof id === 'string' && DEPLOYMENT_ID.test(id)) await drop(id)
    },
    async listOwned(o) {
      const owned = await inner.listOwned(o)
      const mine: OwnedResource[] = (await records()).map((r) => ({ deploymentId: r.deploymentId, kind: 'endpoint', id: `${p.urlHost}:${r.port}` }))
      return [...owned, ...mine]
    },
    async close() {
      closed = true
      await started
      for (const key of [...held]) await release(key, false)
      await inner.close()
    },
  }
  // whatever else the wrapped provisioner offers (capabilities, detect) stays as it is
  return { ...inner, ...wrapped }
}
