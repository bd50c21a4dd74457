/**
 * Several daemons on one PostgreSQL: three `blueprint-operator run` child processes with one operator id and one
 * store URL serve 30 services. SIGKILL a member → its services are adopted (no duplicate process, no second
 * activation, one refund each for those terminated afterwards); SIGKILL the leader → another follows from the
 * persisted cursor (payments and terminations sent meanwhile are applied once, none lost).
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import pg from 'pg'
import type { ServiceRecord } from '../../daemon/state.js'
import { postgresMissing, startPostgres, type PostgresServer } from '../helpers/postgres.js'
import { processesOf, startChild, startStack, waitFor, type Stack } from '../helpers/stack.js'

const N = 30
const D = 3_600_000n // one hour of the basic tier (1000 base units per second)
const LEASE = 3000
const t0 = Date.now()
const trace = (what: string) => process.env.BPO_TEST_TRACE && console.log(`${what} at ${Date.now() - t0} ms`)

describe.skipIf(postgresMissing)(`e2e: three daemons on one PostgreSQL${postgresMissing ? ` (skipped: ${postgresMissing})` : ''}`, () => {
  let server: PostgresServer
  let stack: Stack
  let db: pg.Client
  let miner: NodeJS.Timeout | undefined
  const children: Array<ReturnType<typeof startChild>> = []

  beforeAll(async () => {
    server = await startPostgres()
    const url = await server.createDatabase()
    // blocks only when a transaction or the miner below asks: 60 setup transactions in seconds, not a minute
    stack = await startStack({ blockTime: 0, loopMs: 500, extra: { store: { url, lease_ms: LEASE } } })
    Object.assign((stack.doc.providers as { local: Record<string, unknown> }).local, { vcpu: 16, memory_gib: 16, storage_gib: 200 })
    db = new pg.Client({ connectionString: url })
    await db.connect()
    miner = setInterval(() => void stack.chain.testClient.mine({ blocks: 1 }).catch(() => undefined), 300)
  }, 120_000)
  afterAll(async () => {
    clearInterval(miner)
    for (const c of children) c.child.kill('SIGKILL')
    await db?.end()
    await stack?.stop()
    await server?.stop()
  })

  type Row = { id: string; rec: ServiceRecord; owner: string | null }
  const rows = async (): Promise<Row[]> =>
    (await db.query<{ id: string; json: string; lease_owner: string | null }>('SELECT id, json, lease_owner FROM services')).rows.map((r) => ({ id: r.id, rec: JSON.parse(r.json) as ServiceRecord, owner: r.lease_owner }))
  const pidOf = (owner: string) => Number(owner.split(':').at(-2))
  const leader = async () => {
    const v = (await db.query<{ value: string }>("SELECT value FROM meta WHERE key = 'leader'")).rows[0]?.value
    return v ? pidOf(v) : undefined
  }
  const alive = () => children.filter((c) => c.child.exitCode === null && c.child.signalCode === null)
  const kill = async (pid: number) => {
    const c = children.find((x) => x.child.pid === pid)!
    c.child.kill('SIGKILL')
    await c.exited
  }
  /** Each live service runs exactly its replicas, each ended one none. */
  const noDuplicates = async () => {
    for (const { rec } of await rows()) {
      const n = processesOf(rec.deploymentId, stack.operatorId).length
      if (rec.state === 'active') expect(n, `${rec.deploymentId} (${rec.state})`).toBe(rec.replicas)
      if (rec.state === 'closed' || rec.state === 'refunded') expect(n, rec.deploymentId).toBe(0)
      expect(await stack.events(BigInt(rec.serviceId), 'ServiceActivated'), `activations of ${rec.serviceId}`).toHaveLength(1)
    }
  }

  test('behavior: SIGKILL a member → adopted, no duplicate, one refund each; SIGKILL the leader → followed on, no event lost or doubled', { timeout: 420_000 }, async () => {
    const { chain } = stack
    const blueprintId = await stack.registerDemo()
    for (let i = 0; i < 3; i++) children.push(startChild(stack))
    await chain.customer.mint(D * BigInt(N))
    const ids: bigint[] = []
    for (let i = 0; i < N; i++) ids.push((await chain.customer.requestService({ blueprintId, operator: chain.operatorAddress, tier: 0, ttlSeconds: 86_400n, deposit: D })).serviceId)
    trace('requested')
    const summary = async () => {
      const rs = await rows()
      const by: Record<string, number> = {}
      for (const r of rs) by[`${r.rec.state}${r.rec.reason ? `:${r.rec.reason}:${r.rec.problems?.[0] ?? r.rec.history.at(-1)?.detail ?? ''}` : ''}`] = (by[r.rec.state] ?? 0) + 1
      return `${rs.length} rows ${JSON.stringify(by)}; daemons alive ${alive().length}${alive().length < 3 ? `: ${children.map((c) => c.output().split('\n').filter((l) => /"level":[56]0/.test(l)).slice(-2).join(' | ')).join(' || ')}` : ''}`
    }
    await waitFor(`${N} services active`, async () => {
      const rs = await rows()
      if (rs.some((r) => r.rec.state === 'refunding' || r.rec.state === 'refunded')) throw new Error(`a service was refunded: ${await summary()}`)
      return rs.filter((r) => r.rec.state === 'active').length === N
    }, 240_000, 500).catch(async (err: Error) => {
      throw new Error(`${err.message}; now ${await summary()}`)
    })
    trace('all active')
    const owners = new Map<string, string[]>()
    for (const r of await rows()) if (r.owner) owners.set(r.owner, [...(owners.get(r.owner) ?? []), r.id])
    expect(owners.size, 'the work is shared').toBeGreaterThanOrEqual(2)
    await noDuplicates()

    // 1. a member dies: its leases expire and the others adopt its services
    const lead = await leader()
    expect(lead).toBeDefined()
    const [victimOwner, victimIds] = [...owners].find(([o]) => pidOf(o) !== lead)!
    const killedAt = Date.now()
    await kill(pidOf(victimOwner))
    await waitFor('its services adopted', async () => (await rows()).every((r) => !victimIds.includes(r.id) || (r.owner && r.owner !== victimOwner)), LEASE * 4, 100)
    trace(`adopted ${victimIds.length} services in ${Date.now() - killedAt} ms`)
    // the adopters step them (provision adopts what runs): still one replica each, nothing started twice
    await new Promise((r) => setTimeout(r, 2000))
    await noDuplicates()
    // terminations of adopted services are carried out once: one refund each
    const ended = victimIds.slice(0, 3)
    for (const id of ended) await chain.customer.terminate(BigInt(id))
    await waitFor('terminated services closed', async () => (await rows()).filter((r) => ended.includes(r.id) && r.rec.state === 'closed').length === ended.length, 60_000, 200)
    for (const id of ended) expect(await stack.refunds(BigInt(id)), `refunds of ${id}`).toHaveLength(1)

    // 2. the leader dies: another takes the lock and follows from the persisted cursor
    const cursorBefore = (await db.query<{ value: string }>("SELECT value FROM meta WHERE key = 'cursor'")).rows[0]!.value
    await kill(lead!)
    const live = ids.map(String).filter((id) => !ended.includes(id))
    const [toppedUp, terminated] = [live.slice(0, 2), live.slice(2, 4)]
    // events while nobody leads: none may be lost
    for (const id of toppedUp) await chain.customer.topUp(BigInt(id), D)
    for (const id of terminated) await chain.customer.terminate(BigInt(id))
    const next = await waitFor('a new leader', async () => {
      const l = await leader()
      return l && l !== lead && alive().some((c) => c.child.pid === l) ? l : undefined
    }, LEASE * 4, 100)
    trace(`new leader ${next}`)
    expect(BigInt(JSON.parse(cursorBefore).blockNumber)).toBeGreaterThan(0n)
    await waitFor('payments and terminations applied', async () => {
      const rs = await rows()
      const byId = new Map(rs.map((r) => [r.id, r.rec]))
      return toppedUp.every((id) => byId.get(id)!.ledger.paid === String(2n * D)) && terminated.every((id) => byId.get(id)!.state === 'closed')
    }, 90_000, 250)
    // every service of the dead leader is held by a live daemon again
    await waitFor('all leases held by live daemons', async () => {
      const livePids = new Set(alive().map((c) => c.child.pid))
      return (await rows()).every((r) => ['closed', 'refunded'].includes(r.rec.state) || (r.owner && livePids.has(pidOf(r.owner))))
    }, LEASE * 4, 200)
    await new Promise((r) => setTimeout(r, 2000))

    // applied once: each payment counted once (paid = deposit + top-up), one refund per ended service, none else
    for (const { id, rec } of await rows()) {
      expect(rec.ledger.paid, `paid of ${id}`).toBe(String(toppedUp.includes(id) ? 2n * D : D))
      const refunds = await stack.refunds(BigInt(id))
      expect(refunds, `refunds of ${id}`).toHaveLength([...ended, ...terminated].includes(id) ? 1 : 0)
      expect(rec.history.filter((h) => h.to === 'requested'), `requested once: ${id}`).toHaveLength(1)
    }
    // every event of the contracts recorded exactly once (the table's key forbids twice; none missing)
    const logs = await chain.publicClient.getLogs({ address: [chain.addresses.registry, chain.addresses.escrow], fromBlock: chain.addresses.deployBlock, toBlock: BigInt(JSON.parse((await db.query<{ value: string }>("SELECT value FROM meta WHERE key = 'cursor'")).rows[0]!.value).blockNumber) })
    const processed = new Set((await db.query<{ event_id: string }>('SELECT event_id FROM processed')).rows.map((r) => r.event_id))
    for (const l of logs) expect(processed.has(`${chain.chainId}:${l.transactionHash.toLowerCase()}:${l.logIndex}`), `event ${l.transactionHash}:${l.logIndex}`).toBe(true)
    await noDuplicates()
  })
})
