/**
 * Packaging, as far as this machine can check it without a container engine that can pull the node base image:
 * the Dockerfile's runtime settings agree with each other and with the code (listen address and EXPOSE, the volume
 * owned by the runtime user, the HEALTHCHECK script answering for a real server), the systemd unit verifies, and
 * operator.example.toml passes `config check` with exactly the environment variables the README names.
 */
import { spawn, spawnSync } from 'node:child_process'
import { copyFileSync, existsSync, mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { startTestConsole } from '../helpers/console.js'

const root = fileURLToPath(new URL('../../', import.meta.url))
const read = (f: string) => readFileSync(join(root, f), 'utf8')

/** The Dockerfile's final stage: its instructions as [keyword, rest] with continuation lines joined. */
function finalStage(text: string): Array<[string, string]> {
  const lines = text.replace(/\\\n\s*/g, ' ').split('\n').filter((l) => l.trim() && !l.trim().startsWith('#'))
  const from = lines.map((l, i) => (/^FROM /i.test(l) ? i : -1)).filter((i) => i >= 0).at(-1)!
  return lines.slice(from).map((l) => [l.split(' ')[0]!.toUpperCase(), l.slice(l.indexOf(' ') + 1).trim()])
}

describe('packaging', () => {
  let c: Awaited<ReturnType<typeof startTestConsole>>
  beforeAll(async () => {
    c = await startTestConsole()
  })
  afterAll(async () => {
    await c?.stop()
  })

  test('default: the image listens where it EXPOSEs, keeps state on its VOLUME owned by its USER, installs with npm ci', () => {
    const text = read('Dockerfile')
    const stage = finalStage(text)
    const env = Object.fromEntries(stage.filter(([k]) => k === 'ENV').flatMap(([, v]) => [...v.matchAll(/(\w+)=(\S+)/g)].map((m) => [m[1]!, m[2]!])))
    const one = (k: string) => stage.find(([x]) => x === k)?.[1]
    const listen = env.BPO_HTTP_LISTEN!
    expect(listen).toMatch(/^0\.0\.0\.0:\d+$/)
    expect(one('EXPOSE')).toBe(listen.split(':')[1])
    const volume = JSON.parse(one('VOLUME')!) as string[]
    expect(volume).toEqual([env.BPO_DATA_DIR])
    const user = one('USER')!
    const userAt = stage.findIndex(([k]) => k === 'USER')
    const chown = stage.findIndex(([k, v]) => k === 'RUN' && v.includes(`chown ${user}:${user} ${env.BPO_DATA_DIR}`))
    expect(chown).toBeGreaterThanOrEqual(0)
    expect(chown).toBeLessThan(userAt)
    expect(one('HEALTHCHECK')).toContain('bin/healthcheck.mjs')
    expect(existsSync(join(root, 'bin/healthcheck.mjs'))).toBe(true)
    expect(text).toContain('RUN npm ci ')
    expect(text).not.toMatch(/npm install/)
    // the build copies the dashboard's static files beside the compiled server
    expect(JSON.parse(read('package.json')).scripts.build).toContain('cp -r daemon/http/static dist/daemon/http/')
    // and the grid worker child (CommonJS, not compiled) beside the compiled supervisor that forks it
    expect(JSON.parse(read('package.json')).scripts.build).toContain('cp -r provisioners/threefold/worker dist/provisioners/threefold/')
    expect(existsSync(join(root, 'provisioners/threefold/worker/gridWorker.cjs'))).toBe(true)
  })

  test('behavior: the HEALTHCHECK script passes for a live daemon and fails for a dead address', async () => {
    // asynchronously: the server answering lives in this process
    const run = (listen: string) =>
      new Promise<{ status: number | null; stderr: string }>((resolve) => {
        const child = spawn(process.execPath, [join(root, 'bin/healthcheck.mjs')], { env: { ...process.env, BPO_HTTP_LISTEN: listen }, stdio: ['ignore', 'ignore', 'pipe'] })
        let stderr = ''
        child.stderr.on('data', (d) => (stderr += d))
        child.on('close', (status) => resolve({ status, stderr }))
      })
    expect((await run(new URL(c.url).host)).status).toBe(0)
    const dead = await run('127.0.0.1:1')
    expect(dead.status).toBe(1)
    expect(dead.stderr).toMatch(/^unhealthy: http:\/\/127\.0\.0\.1:1\/healthz/)
  })

  test('behavior: operator.example.toml passes config check with exactly the environment variables the README names', { timeout: 300_000 }, () => {
    const readme = read('README.md')
    const names = [...readme.matchAll(/^\| `([A-Z][A-Z0-9_]+)` \| secret/gm)].map((m) => m[1]!)
    expect(names).toEqual(expect.arrayContaining(['OPERATOR_PRIVATE_KEY', 'BPO_ADMIN_TOKEN']))
    const dir = mkdtempSync(join(tmpdir(), 'bpo-example-'))
    const file = join(dir, 'operator.toml')
    copyFileSync(join(root, 'operator.example.toml'), file)
    const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('BPO_') && k !== 'OPERATOR_PRIVATE_KEY'))
    const check = (env: Record<string, string>) =>
      spawnSync(process.execPath, [join(root, 'bin/blueprint-operator.mjs'), 'config', 'check', file], { env: { ...clean, ...env }, encoding: 'utf8', timeout: 60_000 })
    const all = Object.fromEntries(names.map((n) => [n, n === 'OPERATOR_PRIVATE_KEY' ? `0x${'ab'.repeat(32)}` : `value-of-${n}`]))
    const ok = check(all)
    expect(ok.status, ok.stderr).toBe(0)
    expect(ok.stdout).toMatch(/: ok \(operator my-operator/)
    // each one is needed: without it, config check names it (with every other problem)
    for (const n of names) {
      const { [n]: _, ...rest } = all
      const r = check(rest)
      expect(r.status, n).toBe(1)
      expect(r.stderr).toContain(`environment variable ${n} is not set`)
    }
  })

  test('behavior: the systemd unit verifies', (ctx) => {
    if (!existsSync('/usr/bin/systemd-analyze')) return ctx.skip('systemd-analyze is missing: apt-get install -y systemd')
    const dir = mkdtempSync(join(tmpdir(), 'bpo-unit-'))
    copyFileSync(join(root, 'docs/blueprint-operator.service'), join(dir, 'blueprint-operator.service'))
    const r = spawnSync('systemd-analyze', ['verify', join(dir, 'blueprint-operator.service')], { encoding: 'utf8', timeout: 30_000 })
    expect(r.status, r.stderr).toBe(0)
    expect(r.stderr).not.toMatch(/blueprint-operator\.service:\d+:/)
  })
})
