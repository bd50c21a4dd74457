import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import { describe, expect, test } from 'vitest'
import { main } from './cli.js'

function io() {
  const stdout = new PassThrough()
  const stderr = new PassThrough()
  let out = ''
  let err = ''
  stdout.on('data', (d) => (out += d))
  stderr.on('data', (d) => (err += d))
  return { io: { stdout, stderr }, out: () => out, err: () => err }
}

const file = (text: string) => {
  const f = join(mkdtempSync(join(tmpdir(), 'bpo-cli-')), 'operator.toml')
  writeFileSync(f, text)
  return f
}

describe('blueprint-operator config check', () => {
  test('default: a valid file', async () => {
    const c = io()
    process.env.BPO_CLI_TEST_KEY = '0x' + '01'.repeat(32)
    const f = file(`[operator]\nid = "op"\n[chain]\nrpc_url = "http://127.0.0.1:8545"\nchain_id = 1\nprivate_key = "env:BPO_CLI_TEST_KEY"\nregistry = "0x5FbDB2315678afecb367f032d93F642f64180aa3"\nescrow = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"\n[providers.local]\nenabled = true\n`)
    expect(await main(['config', 'check', f], c.io)).toBe(0)
    expect(c.out()).toMatch(/ok \(operator op, chain 1, local\)/)
  })

  test('error: a broken file prints every problem with its TOML path and exits 1', async () => {
    const c = io()
    const f = file(`[operator]\nid = "UPPER"\nextra = 1\n[chain]\nrpc_url = "nope"\nchain_id = 0\nprivate_key = "0xabc"\nregistry = "0x1"\nescrow = "0x2"\n[loop]\ninterval_ms = -5\n`)
    expect(await main(['config', 'check', f], c.io)).toBe(1)
    const lines = c.err().split('\n').filter((l) => l.startsWith('  '))
    expect(lines.map((l) => l.trim().split(':')[0])).toEqual(
      expect.arrayContaining(['operator.id', 'operator.extra', 'chain.rpc_url', 'chain.chain_id', 'chain.private_key', 'chain.registry', 'chain.escrow', 'loop.interval_ms']),
    )
    expect(c.err()).not.toContain('0xabc')
  })

  test('error: usage', async () => {
    const c = io()
    expect(await main(['config', 'check'], c.io)).toBe(64)
    expect(await main(['frobnicate'], c.io)).toBe(64)
    expect(c.err()).toMatch(/unknown command: frobnicate/)
  })
})
