/**
 * A real PostgreSQL server for tests: Debian's binaries (/usr/lib/postgresql/<v>/bin), a cluster initdb'd in a temp
 * dir owned by the `postgres` user (initdb and postgres refuse root), started on 127.0.0.1 with a free port.
 * Missing binaries: `postgresMissing` says why, and the suites skip with that one line.
 */
import { execFileSync } from 'node:child_process'
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'

function findBin(): string | undefined {
  const root = '/usr/lib/postgresql'
  if (!existsSync(root)) return undefined
  const versions = readdirSync(root).filter((v) => existsSync(join(root, v, 'bin', 'pg_ctl'))).sort((a, b) => Number(b) - Number(a))
  return versions[0] && join(root, versions[0], 'bin')
}

function postgresUid(): { uid: number; gid: number } | undefined {
  try {
    const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim())
    return { uid: id('-u'), gid: id('-g') }
  } catch {
    return undefined
  }
}

const bin = findBin()
const asRoot = process.getuid?.() === 0
const ids = asRoot ? postgresUid() : undefined

/** Why PostgreSQL tests cannot run here (undefined: they can). */
export const postgresMissing: string | undefined = !bin
  ? 'PostgreSQL binaries not found under /usr/lib/postgresql (apt-get install postgresql)'
  : asRoot && !ids
    ? 'running as root but there is no postgres user to run the server as'
    : undefined

export type PostgresServer = {
  /** URL of the cluster's `postgres` database (no password: trust on 127.0.0.1). */
  url: string
  port: number
  /** A new empty database; returns its URL. */
  createDatabase(name?: string): Promise<string>
  stop(): Promise<void>
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port
      s.close(() => resolve(port))
    })
  })
}

let dbCounter = 0

/** initdb a cluster in a temp dir and start it; `stop()` stops it and removes the dir. */
export async function startPostgres(): Promise<PostgresServer> {
  if (postgresMissing) throw new Error(postgresMissing)
  const dir = mkdtempSync(join(tmpdir(), 'bpo-pg-'))
  chmodSync(dir, 0o700)
  if (ids) chownSync(dir, ids.uid, ids.gid)
  const data = join(dir, 'data')
  const run = (cmd: string, args: string[]) =>
    execFileSync(asRoot ? 'setpriv' : join(bin!, cmd), asRoot ? ['--reuid=postgres', '--regid=postgres', '--init-groups', join(bin!, cmd), ...args] : args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LC_ALL: 'C' },
    })
  run('initdb', ['-D', data, '-A', 'trust', '-U', 'bpo', '--no-sync', '-E', 'UTF8'])
  const port = await freePort()
  const opts = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100 -c shared_buffers=16MB`
  run('pg_ctl', ['-D', data, '-o', opts, '-l', join(dir, 'log'), '-w', '-t', '30', 'start'])
  const url = `postgres://bpo@127.0.0.1:${port}/postgres`
  return {
    url,
    port,
    async createDatabase(name) {
      const db = name ?? `t${process.pid}_${++dbCounter}_${Math.random().toString(36).slice(2, 6)}`
      const c = new pg.Client({ connectionString: url })
      await c.connect()
      try {
        await c.query(`CREATE DATABASE ${db}`)
      } finally {
        await c.end()
      }
      return `postgres://bpo@127.0.0.1:${port}/${db}`
    },
    async stop() {
      try {
        run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop'])
      } finally {
        rmSync(dir, { recursive: true, force: true })
      }
    },
  }
}
