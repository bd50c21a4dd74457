/**
 * Several daemons of one operator on one PostgreSQL. One leader follows the chain: it holds a session advisory lock
 * (a dead daemon's session ends and frees it). Services are owned through row leases (lease_owner, lease_until by
 * the database clock): each round a daemon renews its leases, claims unleased or expired ones with
 * `FOR UPDATE SKIP LOCKED` up to its fair share, and refreshes its read model from the rows others changed. A daemon
 * that dies stops renewing; its leases expire within 2/3 of `lease_ms` and are claimed at the next round of another,
 * so its services are adopted within `lease_ms`.
 */
import { hostname } from 'node:os'
import { randomBytes } from 'node:crypto'
import type pg from 'pg'
import type { Common } from '../../core/common.js'
import { redactUrl } from '../../core/errors.js'
import type { Secret } from '../../config/secrets.js'
import { connectPostgres } from './postgres.js'
import type { Coordination } from './types.js'

export type StartCoordinationParameters = {
  url: Secret
  where: string
  operatorId: string
  /** Leases expire this long after their last renewal (2/3 of it, so a renewal may be missed once), ms. */
  leaseMs: number
  /** Run `fn` on the store's connection, never interleaved with a write. */
  exclusive<T>(fn: (client: pg.Client) => Promise<T>): Promise<T>
  /** Bring the read model up to date with the rows (through the group commit); `full` also cursor and event ids. */
  refresh(full: boolean): Promise<void>
}

export type CoordinationHandle = { api: Coordination; stop(): Promise<void> }

const LIVE = "state NOT IN ('closed', 'refunded')"
const NOW = '(extract(epoch from clock_timestamp()) * 1000)::bigint'

export async function startCoordination(common: Common, p: StartCoordinationParameters): Promise<CoordinationHandle> {
  const log = common.logger.child({ module: 'coordination' })
  const owner = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`
  const expiry = Math.round((p.leaseMs * 2) / 3)
  const every = Math.max(200, Math.round(p.leaseMs / 3))
  const lockKey = `blueprint-operator:leader:${p.operatorId}`

  let leader = false
  let held = new Set<string>()
  // leases count only while recently renewed: a daemon cut off from the database stops acting before they expire
  let validUntil = 0
  const leadershipListeners: Array<(leader: boolean) => void> = []
  const acquiredListeners: Array<(ids: string[]) => void> = []
  let lockClient: pg.Client | undefined
  let txClient: pg.Client | undefined
  let txQueue: Promise<unknown> = Promise.resolve()
  const txKey = `blueprint-operator:tx:${p.operatorId}`
  // one session holds the transaction lock while this daemon sends; its death frees it
  const exclusiveTx = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = txQueue.then(async () => {
      if (!txClient) {
        const c = await connectPostgres(p.url, p.where, 'blueprint-operator-tx')
        c.on('error', (err) => {
          log.warn({ err: redactUrl(err.message) }, 'transaction lock connection error')
          if (txClient === c) txClient = undefined
        })
        txClient = c
      }
      const c = txClient
      try {
        await c.query('SELECT pg_advisory_lock(hashtext($1))', [txKey])
      } catch (err) {
        txClient = undefined
        await c.end().catch(() => undefined)
        throw err
      }
      try {
        return await fn()
      } finally {
        await c.query('SELECT pg_advisory_unlock(hashtext($1))', [txKey]).catch(() => undefined)
      }
    })
    txQueue = run.catch(() => undefined)
    return run
  }
  let stopped = false
  let timer: NodeJS.Timeout | undefined

  const setLeader = (v: boolean) => {
    if (leader === v) return
    leader = v
    log.info({ owner }, v ? 'leader: following the chain' : 'no longer the leader')
    for (const fn of leadershipListeners) {
      try {
        fn(v)
      } catch (err) {
        log.error({ err }, 'leadership listener failed')
      }
    }
  }

  const dropLockClient = async () => {
    const c = lockClient
    lockClient = undefined
    await c?.end().catch(() => undefined)
  }

  async function electionRound(): Promise<void> {
    try {
      if (!lockClient) {
        lockClient = await connectPostgres(p.url, p.where, 'blueprint-operator-leader')
        lockClient.on('error', (err) => log.warn({ err: redactUrl(err.message) }, 'leader lock connection error'))
      }
      if (leader) {
        await lockClient.query('SELECT 1') // the session (and so the lock) is still there
        return
      }
      const { rows } = await lockClient.query<{ ok: boolean }>('SELECT pg_try_advisory_lock(hashtext($1)) AS ok', [lockKey])
      if (rows[0]?.ok) {
        // follow from the persisted cursor with every event id recorded by the previous leader
        try {
          await p.refresh(true)
        } catch (err) {
          await lockClient.query('SELECT pg_advisory_unlock(hashtext($1))', [lockKey]).catch(() => undefined)
          throw err
        }
        // who leads, for operators (and tests) reading the database
        await p.exclusive((c) => c.query("INSERT INTO meta (key, value) VALUES ('leader', $1) ON CONFLICT (key) DO UPDATE SET value = excluded.value", [owner]))
        setLeader(true)
      }
    } catch (err) {
      log.warn({ err: redactUrl((err as Error).message) }, 'leader election round failed; will retry')
      setLeader(false)
      await dropLockClient()
    }
  }

  async function leaseRound(): Promise<void> {
    const started = Date.now()
    try {
      const { renewed, claimed, released } = await p.exclusive(async (c) => {
        await c.query(`INSERT INTO daemons (owner, seen_until) VALUES ($1, ${NOW} + $2::bigint) ON CONFLICT (owner) DO UPDATE SET seen_until = excluded.seen_until`, [owner, expiry])
        const renewed = (await c.query<{ id: string }>(`UPDATE services SET lease_until = ${NOW} + $2::bigint WHERE lease_owner = $1 AND ${LIVE} RETURNING id`, [owner, expiry])).rows.map((r) => r.id)
        const { rows } = await c.query<{ daemons: string; live: string }>(
          `SELECT (SELECT count(*) FROM daemons WHERE seen_until >= ${NOW}) AS daemons, (SELECT count(*) FROM services WHERE ${LIVE}) AS live`,
        )
        const daemons = Math.max(1, Number(rows[0]?.daemons ?? 1))
        const share = Math.ceil(Number(rows[0]?.live ?? 0) / daemons)
        // more than a fair share (daemons joined later): hand the surplus back, only services at rest (active or
        // scaled to zero, no side effect pending), so no other daemon starts what this one is in the middle of
        let released: string[] = []
        if (renewed.length > share + 1) {
          released = (
            await c.query<{ id: string }>(
              `UPDATE services SET lease_owner = NULL, lease_until = 0 WHERE id IN (
                 SELECT id FROM services WHERE lease_owner = $1 AND state IN ('active', 'scaled-to-zero') AND json NOT LIKE '%"intent":%'
                 ORDER BY id DESC LIMIT $2) AND lease_owner = $1 RETURNING id`,
              [owner, renewed.length - share],
            )
          ).rows.map((r) => r.id)
          const gone = new Set(released)
          renewed.splice(0, renewed.length, ...renewed.filter((id) => !gone.has(id)))
        }
        const room = Math.max(0, share - renewed.length)
        let claimed: string[] = []
        if (room > 0) {
          claimed = (
            await c.query<{ id: string }>(
              `WITH c AS (SELECT id FROM services WHERE ${LIVE} AND (lease_owner IS NULL OR lease_until < ${NOW}) ORDER BY lease_until, id LIMIT $3 FOR UPDATE SKIP LOCKED)
               UPDATE services s SET lease_owner = $1, lease_until = ${NOW} + $2::bigint FROM c WHERE s.id = c.id RETURNING s.id`,
              [owner, expiry, room],
            )
          ).rows.map((r) => r.id)
        }
        await c.query(`DELETE FROM daemons WHERE seen_until < ${NOW} - $1::bigint`, [p.leaseMs * 20])
        return { renewed, claimed, released }
      })
      // the rows of what it now holds (and what others changed) before it acts on them
      await p.refresh(false)
      const before = held
      held = new Set([...renewed, ...claimed])
      validUntil = started + expiry - Math.round(p.leaseMs / 6)
      if (released.length) log.info({ services: released.length }, 'leases handed back: more than a fair share')
      const lost = [...before].filter((id) => !held.has(id) && !released.includes(id))
      if (lost.length) log.warn({ services: lost.length }, 'leases lost to another daemon')
      const adopted = claimed.filter((id) => !before.has(id))
      if (adopted.length) {
        log.info({ services: adopted.length, owner }, 'leases acquired')
        for (const fn of acquiredListeners) {
          try {
            fn(adopted)
          } catch (err) {
            log.error({ err }, 'lease listener failed')
          }
        }
      }
    } catch (err) {
      log.warn({ err: redactUrl((err as Error).message) }, 'lease round failed; will retry')
    }
  }

  const round = async () => {
    await electionRound()
    await leaseRound()
  }
  let current: Promise<void> | undefined
  const loop = () => {
    if (stopped) return
    timer = setTimeout(() => void (current = round()).finally(loop), every)
  }
  await (current = round())
  loop()

  return {
    api: {
      owner,
      isLeader: () => leader,
      holds: (id) => held.has(id) && Date.now() < validUntil,
      onLeadership: (fn) => void leadershipListeners.push(fn),
      onAcquired: (fn) => void acquiredListeners.push(fn),
      exclusiveTx,
    },
    async stop() {
      stopped = true
      clearTimeout(timer)
      await current
      held = new Set()
      setLeader(false)
      // hand the services over now rather than after expiry
      await p
        .exclusive(async (c) => {
          await c.query('UPDATE services SET lease_owner = NULL, lease_until = 0 WHERE lease_owner = $1', [owner])
          await c.query('DELETE FROM daemons WHERE owner = $1', [owner])
        })
        .catch((err) => log.warn({ err: redactUrl((err as Error).message) }, 'could not release leases; they expire'))
      await dropLockClient()
      await txQueue
      await txClient?.end().catch(() => undefined)
    },
  }
}
