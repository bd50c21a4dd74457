import { spawn, type ChildProcess } from 'node:child_process'
import { accessSync, constants } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, test } from 'vitest'

const script = fileURLToPath(new URL('./demo-service.mjs', import.meta.url))
const children: ChildProcess[] = []
afterAll(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL')
})

async function freePort(): Promise<number> {
  const s = createServer()
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
  const port = (s.address() as { port: number }).port
  await new Promise((r) => s.close(r))
  return port
}

async function start(env: Record<string, string>) {
  const port = await freePort()
  const child = spawn(script, [], { env: { ...process.env, ...env, PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] })
  children.push(child)
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => d.toString().includes('listening') && resolve())
    child.once('exit', (code) => reject(new Error(`exited ${code}`)))
  })
  return { child, url: `http://127.0.0.1:${port}` }
}

const exited = (c: ChildProcess) => new Promise<number | null>((r) => (c.exitCode !== null ? r(c.exitCode) : c.once('exit', (code) => r(code))))

describe('demo-service', () => {
  test('default: is executable and answers / and /healthz; data survives a restart; SIGTERM exits 0', async () => {
    accessSync(script, constants.X_OK)
    const dataDir = await mkdtemp(join(tmpdir(), 'bpo-demo-'))
    try {
      const env = { DATA_DIR: dataDir, SERVICE_ID: '7', BLUEPRINT_ID: '3', DEPLOYMENT_ID: 'bp-1-7', REPLICA_INDEX: '0' }
      const a = await start(env)
      expect((await fetch(`${a.url}/healthz`)).status).toBe(200)
      const info = await (await fetch(`${a.url}/`)).json()
      expect(info).toMatchObject({ service: '7', blueprint: '3', deployment: 'bp-1-7', replica: 0, starts: 1, requests: 1 })
      expect((await fetch(`${a.url}/nope`)).status).toBe(404)
      a.child.kill('SIGTERM')
      expect(await exited(a.child)).toBe(0)
      const b = await start(env)
      expect(await (await fetch(`${b.url}/`)).json()).toMatchObject({ starts: 2, requests: 2 })
      b.child.kill('SIGTERM')
      expect(await exited(b.child)).toBe(0)
    } finally {
      await rm(dataDir, { recursive: true, force: true })
    }
  })

  test('behavior: GET /burn?ms=N spends about N ms of CPU while /healthz keeps answering', async () => {
    const { child, url } = await start({})
    const burning = fetch(`${url}/burn?ms=600`).then((r) => r.json() as Promise<{ burnedMs: number }>)
    await new Promise((r) => setTimeout(r, 100))
    const health = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2_000) })
    expect(health.status).toBe(200)
    const { burnedMs } = await burning
    expect(burnedMs).toBeGreaterThanOrEqual(600)
    // the service's own CPU time rose (read from /proc, utime + stime in clock ticks)
    const stat = (await import('node:fs')).readFileSync(`/proc/${child.pid}/stat`, 'utf8')
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    expect((Number(f[11]) + Number(f[12])) / 100).toBeGreaterThan(0.4)
    child.kill('SIGTERM')
    await exited(child)
  })
})
