import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { startTestConsole } from '../test/helpers/console.js'
import { main } from './cli.js'
import { demoCli } from './demo.js'

function io() {
  const stdout = new PassThrough()
  const stderr = new PassThrough()
  let out = ''
  let err = ''
  stdout.on('data', (d) => (out += d))
  stderr.on('data', (d) => (err += d))
  return { io: { stdout, stderr }, out: () => out, err: () => err }
}

const TOKEN = 'cli-token-' + 'z'.repeat(20)

describe('blueprint-operator status / services', () => {
  let c: Awaited<ReturnType<typeof startTestConsole>>
  beforeAll(async () => {
    c = await startTestConsole({ adminToken: TOKEN })
  })
  afterAll(async () => {
    await c?.stop()
  })

  test('default: status prints the chain, a service table with amounts in their unit, and the targets', async () => {
    const x = io()
    expect(await main(['status', '--url', c.url], x.io)).toBe(0)
    const out = x.out()
    expect(out).toMatch(/^operator op-console \(0x1111/)
    expect(out).toContain('head 10 cursor 8 lag 2 blocks')
    expect(out).toMatch(/^ID\s+STATE\s+TIER\s+REPLICAS\s+TARGET\s+PAID UNTIL\s+PAID\s+EARNED\s+MARGIN\s+ENDPOINT$/m)
    expect(out).toMatch(/^3\s+requested\s+-\s+0\s+-\s+\S+\s+5 USDC\s+0 USDC\s+0 USD\s+-$/m)
    expect(out).toMatch(/^local\s+4\s+8 GiB\s+0\/0$/m)
  })

  test('behavior: services show prints the timeline; stop needs the token, from the environment or the config', async () => {
    const show = io()
    expect(await main(['services', 'show', '4', '--url', c.url], show.io)).toBe(0)
    expect(show.out()).toMatch(/timeline\n {2}\S+ {2}- +-> requested +ServiceInitiated/)
    const denied = io()
    // API_ERROR: the daemon's error answer (status and its code) is the CLI's one line, exit 1
    expect(await main(['services', 'stop', '4', '--url', c.url], denied.io)).toBe(1)
    expect(denied.err()).toMatch(/401 UNAUTHORIZED: .*set BPO_ADMIN_TOKEN/)
    // the token by reference from the TOML file, as the daemon reads it
    const dir = mkdtempSync(join(tmpdir(), 'bpo-cli-'))
    writeFileSync(join(dir, 'token'), TOKEN, { mode: 0o600 }) // a key file others can read is refused
    writeFileSync(join(dir, 'operator.toml'), `[http]\nlisten = "${new URL(c.url).host}"\nadmin_token = "file:token"\n`)
    const ok = io()
    expect(await main(['services', 'stop', '4', '--config', join(dir, 'operator.toml')], ok.io)).toBe(0)
    expect(ok.out()).toMatch(/^service 4 is refunding: .*OPERATOR_STOPPED/)
    expect(c.ctx.store.read().services['4']!.reason).toBe('OPERATOR_STOPPED')
  })

  test('error: usage errors are one line and exit 64; a daemon that is not running exits 75 saying so', async () => {
    for (const argv of [['services'], ['services', 'show'], ['services', 'show', 'abc'], ['services', 'frob', '1'], ['frobnicate'], ['config'], ['pricing', 'import', 'nope', 'x'], ['quote', '--cpu', 'x', '--memory', '1']]) {
      const x = io()
      // CLI_USAGE: one line on stderr, exit 64
      expect(await main([...argv, '--url', c.url], x.io), argv.join(' ')).toBe(64)
      expect(x.err().trim().split('\n'), argv.join(' ')).toHaveLength(1)
      expect(x.err()).toMatch(/^error: /)
      expect(x.err()).not.toMatch(/\n\s+at /)
    }
    const down = io()
    // DAEMON_UNREACHABLE: exit 75 (EX_TEMPFAIL), saying how to start it
    expect(await main(['status', '--url', 'http://127.0.0.1:1'], down.io)).toBe(75)
    expect(down.err()).toMatch(/^cannot reach the daemon at http:\/\/127\.0\.0\.1:1: is it running/)
  })
})

describe('npm run demo', () => {
  test('error: bad arguments are one usage line (exit 64), before anything else is read', async () => {
    for (const argv of [['top-up', '1', 'abc'], ['top-up', '1'], ['top-up', 'x', '1'], ['tier', '1', 'gold'], ['frob', '1']]) {
      const x = io()
      expect(await demoCli(argv, x.io), argv.join(' ')).toBe(64)
      expect(x.err().trim().split('\n')).toHaveLength(1)
      expect(x.err()).toMatch(/^error: /)
    }
  })

  test('error: with the chain down it says to start `npm run dev` first', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bpo-demo-'))
    writeFileSync(join(dir, 'dev.json'), JSON.stringify({ rpcUrl: 'http://127.0.0.1:1', chainId: 31337, token: `0x${'1'.repeat(40)}`, registry: `0x${'2'.repeat(40)}`, escrow: `0x${'3'.repeat(40)}`, operator: `0x${'4'.repeat(40)}`, blueprintId: '1' }))
    const prev = process.env.BPO_DEV_DIR
    process.env.BPO_DEV_DIR = dir
    try {
      const x = io()
      expect(await demoCli(['top-up', '1', '0.05'], x.io)).toBe(75)
      expect(x.err()).toBe('the dev chain at http://127.0.0.1:1 does not answer: start `npm run dev` first (and keep it running)\n')
    } finally {
      if (prev === undefined) delete process.env.BPO_DEV_DIR
      else process.env.BPO_DEV_DIR = prev
    }
  })
})
