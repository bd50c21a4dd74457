/**
 * The shared engine: PostgreSQL through `pg`. Same schema as SQLite; each service row carries a revision so a
 * daemon that writes a row another daemon changed since it read it learns so (and the batch is replayed on the new
 * row) instead of overwriting it. Several daemons of one operator share the database (see coordination.ts).
 */
import pg from 'pg'
import type { Common } from '../../core/common.js'
import { redactUrl } from '../../core/errors.js'
import type { Secret } from '../../config/secrets.js'
import { emptyState, type ServiceRecord, type State } from '../state.js'
import { emptyChanges, type Changes } from './draft.js'
import { stateCorrupt, stateMismatch, storeUnavailable } from './errors.js'
import type { Owner } from './importJson.js'
import { migrate } from './migrations.js'
import type { Conflicts, Engine } from './types.js'

export type OpenPostgresParameters = {
  url: Secret
  owner: Owner
  seed?: () => State | undefined
  /** Service leases expire after this long without renewal, ms. */
  leaseMs: number
}

/** Where the database is, for messages: host, port and database name, never the credentials. */
export function describeUrl(url: string): string {
  try {
    const u = new URL(url)
    return `postgres://${u.hostname}${u.port ? `:${u.port}` : ''}${u.pathname}`
  } catch {
    return redactUrl(url).replace(/\?.*$/, '')
  }
}

const TIMEOUTS = { connectionTimeoutMillis: 10_000, statement_timeout: 30_000, query_timeout: 35_000 }

/** A client connected to `url` (errors never carry the password). */
export async function connectPostgres(url: Secret, where: string, appName = 'blueprint-operator'): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url.reveal(), application_name: appName, ...TIMEOUTS })
  try {
    await client.connect()
  } catch (err) {
    await client.end().catch(() => undefined)
    throw storeUnavailable(where, new Error(redactUrl((err as Error).message)))
  }
  return client
}

/** Serialize work on one client, so a transaction never interleaves with another query. */
export function createExclusive(): <T>(fn: () => Promise<T>) => Promise<T> {
  let chain: Promise<unknown> = Promise.resolve()
  return <T>(fn: () => Promise<T>) => {
    const run = chain.then(fn)
    chain = run.catch(() => undefined)
    return run
  }
}

const MIGRATE_LOCK = "hashtext('blueprint-operator:migrate')"

/** What coordination needs of the engine: its connection (serialized) and a diff of the rows against the read model. */
export type PostgresAccess = {
  exclusive<T>(fn: (client: pg.Client) => Promise<T>): Promise<T>
  /** The rows others changed since this daemon last saw them (by revision); `full` also the cursor and event ids. */
  poll(full: boolean, committed: Readonly<State>): Promise<Changes>
  where: string
}

export async function openPostgres(common: Common, p: OpenPostgresParameters): Promise<{ engine: Engine; seeded: boolean; access: PostgresAccess }> {
  const log = common.logger
  const where = describeUrl(p.url.reveal())
  let client = await connectPostgres(p.url, where)
  // a dropped connection must not crash the process: the next query fails, the one after reconnects
  let broken = false
  const watch = (c: pg.Client) =>
    c.on('error', (err) => {
      log.warn({ err: redactUrl(err.message) }, 'state database connection error')
      if (c === client) broken = true
    })
  watch(client)
  const exclusive = createExclusive()
  const exclusiveClient = <T>(fn: (c: pg.Client) => Promise<T>): Promise<T> =>
    exclusive(async () => {
      if (broken) {
        const old = client
        client = await connectPostgres(p.url, where)
        watch(client)
        broken = false
        await old.end().catch(() => undefined)
        log.info({ database: where }, 'state database reconnected')
      }
      try {
        return await fn(client)
      } catch (err) {
        // not an answer of the server (connection lost, client timeout): the next call starts on a new connection
        if (!(err instanceof pg.DatabaseError)) broken = true
        throw err
      }
    })
  const revs = new Map<string, number>()
  let seeded = false
  try {
    await client.query('BEGIN')
    try {
      // daemons starting together migrate one after the other
      await client.query(`SELECT pg_advisory_xact_lock(${MIGRATE_LOCK})`)
      await migrate(
        {
          exec: async (sql) => void (await client.query(sql)),
          versions: async () => (await client.query<{ version: number }>('SELECT version FROM schema_migrations')).rows.map((r) => Number(r.version)),
          record: async (v, at) => void (await client.query('INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)', [v, at])),
        },
        'postgres',
        where,
      )
      const meta = new Map((await client.query<{ key: string; value: string }>('SELECT key, value FROM meta')).rows.map((r) => [r.key, r.value]))
      if (!meta.has('operator_id')) {
        await client.query("INSERT INTO meta (key, value) VALUES ('operator_id', $1), ('chain_id', $2)", [p.owner.operatorId, String(p.owner.chainId)])
        const seed = p.seed?.()
        if (seed) {
          const c = emptyChanges()
          for (const [id, rec] of Object.entries(seed.services)) c.services.set(id, rec)
          for (const [id, b] of Object.entries(seed.processed)) c.processed.set(id, b)
          if (seed.cursor) c.cursor = { value: seed.cursor }
          const { conflicts } = await writeRows(client, c, revs, {})
          if (conflicts) throw new Error('rows appeared while importing into an empty database')
          seeded = true
        }
      } else {
        const found = { operatorId: meta.get('operator_id')!, chainId: Number(meta.get('chain_id')) }
        if (found.operatorId !== p.owner.operatorId || found.chainId !== p.owner.chainId) throw stateMismatch(`state database ${where}`, found, p.owner)
      }
      await client.query('COMMIT')
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined)
      throw err
    }
  } catch (err) {
    await client.end().catch(() => undefined)
    throw err
  }
  log.info({ database: where }, 'state database open')

  const parse = (id: string, json: string): ServiceRecord => {
    try {
      return JSON.parse(json) as ServiceRecord
    } catch (err) {
      throw stateCorrupt(`state database ${where}: service ${id} is not valid JSON`, err)
    }
  }

  const reload = (ids: Conflicts): Promise<Changes> =>
    exclusiveClient(async (client) => {
      const out = emptyChanges()
      if (ids.services.length) {
        const { rows } = await client.query<{ id: string; json: string; rev: string }>('SELECT id, json, rev FROM services WHERE id = ANY($1::text[])', [ids.services])
        for (const id of ids.services) out.services.set(id, null)
        for (const r of rows) {
          out.services.set(r.id, parse(r.id, r.json))
          revs.set(r.id, Number(r.rev))
        }
        for (const [id, v] of out.services) if (v === null) revs.delete(id)
      }
      if (ids.processed.length) {
        const { rows } = await client.query<{ event_id: string; block: string }>('SELECT event_id, block FROM processed WHERE event_id = ANY($1::text[])', [ids.processed])
        for (const id of ids.processed) out.processed.set(id, null)
        for (const r of rows) out.processed.set(r.event_id, String(r.block))
      }
      return out
    })

  const engine: Engine = {
    name: 'postgres',
    load: () =>
      exclusiveClient(async (client) => {
        const st = emptyState(p.owner.operatorId, p.owner.chainId)
        const cursor = (await client.query<{ value: string }>("SELECT value FROM meta WHERE key = 'cursor'")).rows[0]?.value
        if (cursor) st.cursor = Object.freeze(JSON.parse(cursor))
        for (const r of (await client.query<{ id: string; json: string; rev: string }>('SELECT id, json, rev FROM services')).rows) {
          st.services[r.id] = parse(r.id, r.json)
          revs.set(r.id, Number(r.rev))
        }
        for (const r of (await client.query<{ event_id: string; block: string }>('SELECT event_id, block FROM processed')).rows) st.processed[r.event_id] = String(r.block)
        return st
      }),
    write: (changes, committed) =>
      exclusiveClient(async (client) => {
        await client.query('BEGIN')
        try {
          const { conflicts, done } = await writeRows(client, changes, revs, committed.processed)
          if (conflicts) {
            await client.query('ROLLBACK')
            return conflicts
          }
          await client.query('COMMIT')
          for (const [id, rev] of done) {
            if (rev === null) revs.delete(id)
            else revs.set(id, rev)
          }
          return undefined
        } catch (err) {
          await client.query('ROLLBACK').catch(() => undefined)
          throw err
        }
      }),
    reload,
    async close() {
      await exclusive(() => client.end()).catch(() => undefined)
    },
  }
  const poll = (full: boolean, committed: Readonly<State>): Promise<Changes> =>
    exclusiveClient(async (client) => {
      const { rows } = await client.query<{ id: string; rev: string }>('SELECT id, rev FROM services')
      const stale: string[] = []
      const seen = new Set<string>()
      for (const r of rows) {
        seen.add(r.id)
        if (revs.get(r.id) !== Number(r.rev)) stale.push(r.id)
      }
      const out = emptyChanges()
      for (const id of Object.keys(committed.services)) if (!seen.has(id)) out.services.set(id, null)
      for (const id of out.services.keys()) revs.delete(id)
      if (stale.length) {
        for (let i = 0; i < stale.length; i += 1000) {
          const ids = stale.slice(i, i + 1000)
          const got = await client.query<{ id: string; json: string; rev: string }>('SELECT id, json, rev FROM services WHERE id = ANY($1::text[])', [ids])
          for (const r of got.rows) {
            out.services.set(r.id, parse(r.id, r.json))
            revs.set(r.id, Number(r.rev))
          }
        }
      }
      if (full) {
        const cursor = (await client.query<{ value: string }>("SELECT value FROM meta WHERE key = 'cursor'")).rows[0]?.value
        out.cursor = { value: cursor ? Object.freeze(JSON.parse(cursor)) : undefined }
        const have = new Set<string>()
        for (const r of (await client.query<{ event_id: string; block: string }>('SELECT event_id, block FROM processed')).rows) {
          have.add(r.event_id)
          if (committed.processed[r.event_id] !== String(r.block)) out.processed.set(r.event_id, String(r.block))
        }
        for (const id of Object.keys(committed.processed)) if (!have.has(id)) out.processed.set(id, null)
      }
      return out
    })
  return { engine, seeded, access: { exclusive: exclusiveClient, poll, where } }
}

/**
 * Write `c` inside the caller's transaction: known rows only at the revision this daemon last saw, new rows only if
 * nobody inserted them, event ids only once. Returns the conflicting ids, if any, and the new revision of each row
 * written (null: deleted) for the caller to keep once committed.
 */
async function writeRows(client: pg.Client, c: Changes, revs: ReadonlyMap<string, number>, known: Readonly<Record<string, string>>): Promise<{ conflicts?: Conflicts; done: Map<string, number | null> }> {
  const upd = { id: [] as string[], state: [] as string[], json: [] as string[], at: [] as string[], rev: [] as number[] }
  const ins = { id: [] as string[], state: [] as string[], json: [] as string[], at: [] as string[] }
  const del = { id: [] as string[], rev: [] as number[] }
  for (const [id, rec] of c.services) {
    const rev = revs.get(id)
    if (rec) {
      const o = rev === undefined ? ins : upd
      o.id.push(id)
      o.state.push(rec.state ?? '')
      o.json.push(JSON.stringify(rec))
      o.at.push(rec.updatedAt ?? '')
      if (rev !== undefined) upd.rev.push(rev)
    } else if (rev !== undefined) {
      del.id.push(id)
      del.rev.push(rev)
    }
  }
  const conflicts: Conflicts = { services: [], processed: [] }
  const done = new Map<string, number | null>()
  if (upd.id.length) {
    const { rows } = await client.query<{ id: string; rev: string }>(
      `UPDATE services s SET state = i.state, json = i.json, updated_at = i.updated_at, rev = s.rev + 1
       FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[]) AS i(id, state, json, updated_at, rev)
       WHERE s.id = i.id AND s.rev = i.rev RETURNING s.id, s.rev`,
      [upd.id, upd.state, upd.json, upd.at, upd.rev],
    )
    for (const r of rows) done.set(r.id, Number(r.rev))
    for (const id of upd.id) if (!done.has(id)) conflicts.services.push(id)
  }
  if (ins.id.length) {
    const { rows } = await client.query<{ id: string }>(
      `INSERT INTO services (id, state, json, updated_at, rev)
       SELECT id, state, json, updated_at, 1 FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS i(id, state, json, updated_at)
       ON CONFLICT (id) DO NOTHING RETURNING id`,
      [ins.id, ins.state, ins.json, ins.at],
    )
    for (const r of rows) done.set(r.id, 1)
    for (const id of ins.id) if (!done.has(id)) conflicts.services.push(id)
  }
  if (del.id.length) {
    const { rows } = await client.query<{ id: string }>(
      'DELETE FROM services s USING unnest($1::text[], $2::bigint[]) AS d(id, rev) WHERE s.id = d.id AND s.rev = d.rev RETURNING s.id',
      [del.id, del.rev],
    )
    for (const r of rows) done.set(r.id, null)
    for (const id of del.id) if (!done.has(id)) conflicts.services.push(id)
  }
  const add = { id: [] as string[], block: [] as string[] }
  const move = { id: [] as string[], block: [] as string[] }
  const drop: string[] = []
  for (const [id, b] of c.processed) {
    if (b === null) drop.push(id)
    else {
      const o = Object.hasOwn(known, id) ? move : add
      o.id.push(id)
      o.block.push(b)
    }
  }
  if (move.id.length)
    await client.query('UPDATE processed p SET block = m.block FROM unnest($1::text[], $2::bigint[]) AS m(event_id, block) WHERE p.event_id = m.event_id', [move.id, move.block])
  if (add.id.length) {
    // an event id already there was acted on by another daemon (a leader that lost its lock): never twice
    const { rows } = await client.query<{ event_id: string }>(
      'INSERT INTO processed (event_id, block) SELECT * FROM unnest($1::text[], $2::bigint[]) ON CONFLICT (event_id) DO NOTHING RETURNING event_id',
      [add.id, add.block],
    )
    if (rows.length !== add.id.length) {
      const got = new Set(rows.map((r) => r.event_id))
      for (const id of add.id) if (!got.has(id)) conflicts.processed.push(id)
    }
  }
  if (drop.length) await client.query('DELETE FROM processed WHERE event_id = ANY($1::text[])', [drop])
  if (c.cursor) {
    if (c.cursor.value)
      await client.query("INSERT INTO meta (key, value) VALUES ('cursor', $1) ON CONFLICT (key) DO UPDATE SET value = excluded.value", [JSON.stringify(c.cursor.value)])
    else await client.query("DELETE FROM meta WHERE key = 'cursor'")
  }
  return { ...((conflicts.services.length || conflicts.processed.length) && { conflicts }), done }
}
