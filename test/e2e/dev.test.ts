/**
 * The quick start: `blueprint-operator dev` (what `npm run dev` runs) brings up anvil, the contracts, the demo
 * blueprint and customer and the daemon; the demo service answers HTTP; the demo commands act on it; Ctrl-C stops
 * everything and leaves no process behind.
 */
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, test } from 'vitest'
import { binPath, waitFor } from '../helpers/stack.js'

/** Pids of live processes whose DATA_DIR lies under `dir`. */
function processesUnder(dir: string): number[] {
  const out: number[] = []
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue
    try {
      if (/\) Z /.test(readFileSync(`/proc/${d}/stat`, 'latin1'))) continue
      const env = readFileSync(`/proc/${d}/environ`, 'latin1').split('\0')
      if (env.some((e) => e.startsWith(`DATA_DIR=${dir}`))) out.push(Number(d))
    } catch {
      // gone
    }
  }
  return out
}

describe('e2e: npm run dev', () => {
  test('default: the demo service answers, the demo commands work, Ctrl-C cleans up', { timeout: 180_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bpo-dev-'))
    const env = { ...process.env, BPO_DEV_DIR: dir, BPO_DEV_HTTP: '127.0.0.1:0', BPO_DEV_LOOP_MS: '500', NO_COLOR: '1' }
    const child = spawn(process.execPath, [binPath, 'dev'], { env, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (out += d))
    const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)))
    try {
      const endpoint = await waitFor('the demo service', () => /service:\s+(http:\/\/\S+)/.exec(out)?.[1], 120_000, 200)
      const body = (await (await fetch(endpoint)).json()) as { deployment: string }
      expect(body.deployment).toBe('bp-31337-1')
      expect(out).toMatch(/requested.*\n(.*\n)*.*provisioning.*\n(.*\n)*.*active/)
      const dashboard = /dashboard:\s+(http:\/\/\S+)/.exec(out)![1]!
      const html = await (await fetch(dashboard)).text()
      expect(html).toContain('<h1>blueprint-operator</h1>')
      const services = (await (await fetch(`${dashboard}api/services`)).json()) as Array<{ serviceId: string; state: string }>
      expect(services).toEqual([expect.objectContaining({ serviceId: '1', state: 'active' })])

      const demo = (...args: string[]) => spawnSync(process.execPath, [binPath, 'demo', ...args], { env, encoding: 'utf8', timeout: 60_000 })
      const topUp = demo('top-up', '1', '0.05')
      expect(topUp.status, topUp.stderr).toBe(0)
      expect(topUp.stdout).toMatch(/paid 0.05 USDC into service 1/)
      const status = demo('status', '1')
      expect(status.stdout).toMatch(/service 1: active, tier basic, balance 0\.0[0-9]+ USDC/)
      expect(processesUnder(dir).length).toBe(1)
    } finally {
      child.kill('SIGINT')
      expect(await exited).toBe(0)
    }
    expect(out).toMatch(/deployment destroyed/)
    await waitFor('no demo process left', () => processesUnder(dir).length === 0, 10_000)
  })
})
