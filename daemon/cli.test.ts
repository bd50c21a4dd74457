import { existsSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
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

const podmanMissing = !['/usr/bin', '/usr/local/bin', '/bin'].some((d) => existsSync(join(d, 'podman')))
const LOCAL = `[operator]\nid = "op"\n[chain]\nrpc_url = "http://127.0.0.1:8545"\nchain_id = 1\nprivate_key = "env:BPO_CLI_TEST_KEY"\nregistry = "0x5FbDB2315678afecb367f032d93F642f64180aa3"\nescrow = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"\n[providers.local]\nenabled = true\n`

describe('blueprint-operator config check', () => {
  test('default: a valid file', async () => {
    const c = io()
    process.env.BPO_CLI_TEST_KEY = '0x' + '01'.repeat(32)
    const f = file(`[operator]\nid = "op"\n[chain]\nrpc_url = "http://127.0.0.1:8545"\nchain_id = 1\nprivate_key = "env:BPO_CLI_TEST_KEY"\nregistry = "0x5FbDB2315678afecb367f032d93F642f64180aa3"\nescrow = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"\n[providers.local]\nenabled = true\n`)
    expect(await main(['config', 'check', f], c.io)).toBe(0)
    expect(c.out()).toMatch(/ok \(operator op, chain 1, local\)/)
    // whether podman runs containers here (the daemon's start-up check)
    if (podmanMissing) expect(c.out()).toMatch(/^local: container sources: no \(podman is not installed/m)
    else expect(c.out()).toMatch(/^local: container sources: yes \(podman \d[^)]*\)$/m)
  })

  test('behavior: a podman that cannot run containers is a "no" with its reason, still exit 0', async () => {
    const c = io()
    process.env.BPO_CLI_TEST_KEY = '0x' + '01'.repeat(32)
    const f = file(LOCAL)
    // a real podman refusing: its configuration names an OCI runtime that does not exist
    const conf = join(dirname(f), 'containers.conf')
    writeFileSync(conf, '[engine]\nruntime = "bpo-no-such-runtime"\n')
    const saved = process.env.CONTAINERS_CONF
    process.env.CONTAINERS_CONF = conf
    try {
      expect(await main(['config', 'check', f], c.io)).toBe(0)
    } finally {
      if (saved === undefined) delete process.env.CONTAINERS_CONF
      else process.env.CONTAINERS_CONF = saved
    }
    const line = c.out().split('\n').find((l) => l.startsWith('local: container sources:'))
    if (podmanMissing) expect(line).toMatch(/^local: container sources: no \(podman is not installed/)
    else expect(line).toMatch(/^local: container sources: no \(podman version failed: .*"bpo-no-such-runtime" not found/)
  })

  test('args: containers = "off" says so without running podman', async () => {
    const c = io()
    process.env.BPO_CLI_TEST_KEY = '0x' + '01'.repeat(32)
    expect(await main(['config', 'check', file(`${LOCAL}containers = "off"\n`)], c.io)).toBe(0)
    expect(c.out()).toMatch(/^local: container sources: no \(containers are off in the configuration\)$/m)
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

describe('blueprint-operator quote --config --explain', () => {
  test('default: the decision over the operator’s targets and the cached catalog, with rejected classes', async () => {
    const { writeCacheFile } = await import('../pricing/catalog.js')
    const { usd } = await import('../core/money.js')
    const dir = mkdtempSync(join(tmpdir(), 'bpo-explain-'))
    const o = (instanceType: string, region: string, vcpu: number, memoryGiB: number, hourly: string) => ({ provider: 'aws' as const, region, instanceType, vcpu, memoryGiB, gpu: { count: 0 }, includedStorageGiB: 0, hourlyUsd: usd(hourly), storageUsdPerGiBMonth: usd('0.08'), source: 'skypilot-aws', fetchedAt: Date.now() })
    await writeCacheFile(join(dir, 'pricing'), 'skypilot-aws', Date.now(), [o('t3.small', 'us-east-1', 2, 2, '0.0208'), o('t3.nano', 'us-east-1', 2, 0.5, '0.0052'), o('m5.large', 'eu-west-1', 2, 8, '0.096'), o('t3.small', 'ap-south-1', 2, 2, '0.001')])
    const { generateKeyPair } = await import('../test/helpers/sshd.js')
    writeFileSync(join(dir, 'login'), (await generateKeyPair(dir)).privateKey, { mode: 0o600 })
    process.env.BPO_CLI_TEST_KEY = '0x' + '01'.repeat(32)
    process.env.BPO_CLI_AWS = 'AKIAEXPLAIN'
    const f = join(dir, 'operator.toml')
    writeFileSync(
      f,
      `[operator]\nid = "op"\ndata_dir = "${dir}"\n[chain]\nrpc_url = "http://127.0.0.1:8545"\nchain_id = 1\nprivate_key = "env:BPO_CLI_TEST_KEY"\nregistry = "0x5FbDB2315678afecb367f032d93F642f64180aa3"\nescrow = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"\n` +
        `[pricing]\nsources = ["skypilot-aws"]\n[providers.local]\nenabled = true\nvcpu = 4\nmemory_gib = 8\nhourly_usd = "0.05"\n` +
        `[providers.aws]\naccess_key_id = "env:BPO_CLI_AWS"\nsecret_access_key = "env:BPO_CLI_AWS"\nregions = ["us-east-1", "eu-west-1"]\nendpoint = "http://127.0.0.1:9"\nssh_key = "file:${join(dir, 'login')}"\nssh_source_cidr = "203.0.113.7/32"\n`,
    )
    const c = io()
    const code = await main(['quote', '--config', f, '--explain', '--cpu', '2', '--memory', '1', '--top', '4'], c.io)
    expect(c.err()).toBe('')
    expect(code).toBe(0)
    const lines = c.out().split('\n')
    expect(lines[0]).toMatch(/^placement \(mode cheapest\) over 2 target\(s\) and 4 catalog offer\(s\)/)
    // ap-south-1 is not among the account's regions: never a candidate; t3.nano is too small
    expect(lines.filter((l) => /^(winner|#\d)/.test(l)).map((l) => l.split(/\s+/).slice(1, 4).join(' '))).toEqual(['aws us-east-1 t3.small', 'local local local', 'aws eu-west-1 m5.large'])
    expect(c.out()).toMatch(/rejected:\n\s+1\s+too little memory/)
    const j = io()
    expect(await main(['quote', '--config', f, '--explain', '--json', '--cpu', '16', '--memory', '1'], j.io)).toBe(1)
    expect(JSON.parse(j.out())).toMatchObject({ winner: null, rejected: { 'too few vCPU': 4 } }) // three EC2 offers in the account's regions and the local machine
  })
})
