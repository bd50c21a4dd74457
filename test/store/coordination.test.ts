import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { makeSecret } from '../../config/secrets.js'
import { createStore, type Store } from '../../daemon/store.js'
import { postgresMissing, startPostgres, type PostgresServer } from '../helpers/postgres.js'
import { waitFor } from '../helpers/stack.js'
import { common, record } from './suite.js'

const runTs = fileURLToPath(new URL('../../bin/run-ts.mjs', import.meta.url))
const holder = fileURLToPath(new URL('./fixtures/lease-holder.ts', import.meta.url))

describe.skipIf(postgresMissing)(`store: coordination on postgres${postgresMissing ? ` (skipped: ${postgresMissing})` : ''}`, () => {
  let server: PostgresServer
  beforeAll(async () => {
    server = await startPostgres()
  }, 60_000)
  afterAll(async () => {
    await server?.stop()
  })
  const LEASE = 1500
  const open = (url: string) => createStore(common, { file: '/nonexistent/unused.sqlite', url: makeSecret('env:PG', url), operatorId: 'op', chainId: 1, leaseMs: LEASE })
  const heldBy = (s: Store, ids: string[]) => ids.filter((id) => s.coordination!.holds(id))
  const ids = Array.from({ length: 10 }, (_, i) => String(i + 1))

  test('behavior: one leader; rows one daemon inserts reach the other; services split by lease; a graceful stop hands over at once', { timeout: 60_000 }, async () => {
    const url = await server.createDatabase()
    const a = await open(url)
    const b = await open(url)
    expect(a.coordination!.isLeader()).toBe(true)
    expect(b.coordination!.isLeader()).toBe(false)
    await a.update((st) => {
      for (const id of ids) st.services[id] = record(id, { state: 'active' })
      st.services['99'] = record('99', { state: 'closed' }) // terminal: nobody leases it
    })
    await waitFor('b sees the rows a inserted', () => Object.keys(b.read().services).length === 11, 10_000)
    await waitFor('the services split 5/5', () => heldBy(a, ids).length === 5 && heldBy(b, ids).length === 5, 10_000)
    expect(new Set([...heldBy(a, ids), ...heldBy(b, ids)]).size).toBe(10)
    expect(a.coordination!.holds('99') || b.coordination!.holds('99')).toBe(false)
    // a change by the lease holder reaches the other's read model
    const id = heldBy(b, ids)[0]!
    await b.update((st) => void (st.services[id]!.health.failures = 4))
    await waitFor('a sees b\'s change', () => a.read().services[id]!.health.failures === 4, 10_000)
    const leads: boolean[] = []
    b.coordination!.onLeadership((l) => leads.push(l))
    const t0 = Date.now()
    await a.close()
    await waitFor('b leads and holds everything', () => b.coordination!.isLeader() && heldBy(b, ids).length === 10, 10_000)
    expect(Date.now() - t0).toBeLessThan(LEASE)
    expect(leads).toEqual([true])
    await b.close()
  })

  test('behavior: a daemon that joins later gets a fair share: the others hand back services at rest', { timeout: 30_000 }, async () => {
    const url = await server.createDatabase()
    const a = await open(url)
    await a.update((st) => {
      for (const id of ids) st.services[id] = record(id, { state: id === '1' ? 'provisioning' : 'active', ...(id === '2' && { intent: { op: 'scale', at: 'x', attempt: 1 } }) })
    })
    await waitFor('a holds all', () => heldBy(a, ids).length === 10, 10_000)
    const b = await open(url)
    await waitFor('the services split 5/5', () => heldBy(a, ids).length === 5 && heldBy(b, ids).length === 5, 10_000)
    // what is in the middle of something stays where it is
    expect(a.coordination!.holds('1') && a.coordination!.holds('2')).toBe(true)
    await a.close()
    await b.close()
  })

  test('behavior: transactions of daemons sharing one account run one at a time among them', { timeout: 30_000 }, async () => {
    const url = await server.createDatabase()
    const [a, b] = [await open(url), await open(url)]
    let inside = 0
    let most = 0
    const send = (s: Store) =>
      s.coordination!.exclusiveTx(async () => {
        most = Math.max(most, ++inside)
        await new Promise((r) => setTimeout(r, 30))
        inside--
      })
    await Promise.all(Array.from({ length: 6 }, (_, i) => send(i % 2 ? a : b)))
    expect(most).toBe(1)
    // a failing send releases the lock for the next
    await expect(a.coordination!.exclusiveTx(async () => { throw new Error('nonce too low') })).rejects.toThrow(/nonce/)
    await b.coordination!.exclusiveTx(async () => undefined)
    await a.close()
    await b.close()
  })

  test('behavior: a daemon killed with SIGKILL loses its leader lock at once and its leases within lease_ms; the survivor adopts them', { timeout: 60_000 }, async () => {
    const url = await server.createDatabase()
    const child = spawn(process.execPath, [runTs, holder, url, String(LEASE)], { stdio: ['ignore', 'pipe', 'inherit'] })
    let last: { leader: boolean; held: string[] } | undefined
    child.stdout!.on('data', (d: Buffer) => {
      const line = d.toString().trim().split('\n').at(-1)
      if (line) last = JSON.parse(line)
    })
    const exited = new Promise((r) => child.on('exit', r))
    try {
      await waitFor('the child leads', () => last?.leader, 20_000)
      const b = await open(url)
      expect(b.coordination!.isLeader()).toBe(false)
      await b.update((st) => {
        for (const id of ids) st.services[id] = record(id, { state: 'active' })
      })
      await waitFor('the services split 5/5', () => last?.held.length === 5 && heldBy(b, ids).length === 5, 15_000)
      const childHeld = last!.held
      const adopted: string[] = []
      b.coordination!.onAcquired((got) => adopted.push(...got))
      const t0 = Date.now()
      child.kill('SIGKILL')
      await exited
      await waitFor('b leads', () => b.coordination!.isLeader(), 5_000)
      await waitFor('b adopts the dead daemon\'s services', () => childHeld.every((id) => b.coordination!.holds(id)), 5_000, 20)
      const took = Date.now() - t0
      expect(took).toBeLessThanOrEqual(LEASE + 500) // within lease_ms (+ one poll of slack for this 2-core machine)
      expect(adopted.sort()).toEqual([...childHeld].sort())
      await b.close()
    } finally {
      child.kill('SIGKILL')
    }
  })
})
