import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { inspect } from 'node:util'
import { parse } from 'smol-toml'
import { describe, expect, test } from 'vitest'
import { ConfigError, loadConfig, parseConfig } from './config.js'

const env = { OPERATOR_PRIVATE_KEY: '0x' + 'ab'.repeat(32) }
const minimal = `
[operator]
id = "op-1"
[chain]
rpc_url = "http://127.0.0.1:8545"
chain_id = 31337
private_key = "env:OPERATOR_PRIVATE_KEY"
registry = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
escrow = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"
`

function write(text: string) {
  const dir = mkdtempSync(join(tmpdir(), 'bpo-config-'))
  const f = join(dir, 'operator.toml')
  writeFileSync(f, text)
  return f
}

function problems(text: string, e: NodeJS.ProcessEnv = env) {
  try {
    loadConfig(write(text), { env: e })
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError)
    return (err as ConfigError).problems.map((p) => `${p.path}: ${p.message}`)
  }
  throw new Error('expected a ConfigError')
}

describe('loadConfig', () => {
  test('default', () => {
    const c = loadConfig(write(minimal), { env })
    expect(c.operator.id).toBe('op-1')
    expect(c.chain.confirmations).toBe(2)
    expect(c.chain.rpcBatchSize).toBe(50)
    expect(c.loop.intervalMs).toBe(30_000)
    expect(c.tiers.standard).toEqual({ minReplicas: 2, maxReplicas: 5 })
    expect(c.token.usdPerToken.toString()).toBe('1')
    expect(c.chain.privateKey.reveal()).toBe(env.OPERATOR_PRIVATE_KEY)
    expect(Object.isFrozen(c)).toBe(true)
    expect(Object.isFrozen(c.chain)).toBe(true)
  })

  test('behavior: operator.example.toml is valid and documents every key it sets', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bpo-config-'))
    const f = join(dir, 'operator.toml')
    copyFileSync(new URL('../operator.example.toml', import.meta.url), f)
    const c = loadConfig(f, { env: { ...env, BPO_SSH_KEY_RACK1: 'PRIVATE KEY MATERIAL', BPO_ADMIN_TOKEN: 't', BPO_WEBHOOK_SECRET: 's' } })
    expect(c.http.adminToken?.reveal()).toBe('t')
    expect(c.notifications.webhooks).toEqual([expect.objectContaining({ url: 'https://hooks.example.com/blueprint-operator', events: ['active', 'scaled-to-zero', 'closed', 'refunded'] })])
    expect(c.providers.ssh?.hosts[0]?.privateKey.reveal()).toBe('PRIVATE KEY MATERIAL')
    expect(c.providers.ssh?.hosts[0]?.name).toBe('rack-1')
    expect(c.providers.local?.workloadUids).toEqual([100000, 100999])
    expect(c.providers.kubernetes?.clusters[0]?.name).toBe('edge')
    expect(c.providers.kubernetes).toMatchObject({ storage: 'persistent', serviceType: 'ClusterIP', gpuModelLabel: 'nvidia.com/gpu.product' })
  })

  test('behavior: secrets never appear in clear', () => {
    const c = loadConfig(write(minimal), { env })
    const shown = JSON.stringify(c, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)) + inspect(c, { depth: 10 }) + String(c.chain.privateKey)
    expect(shown).not.toContain('abababab')
    expect(shown).toContain('env:OPERATOR_PRIVATE_KEY')
  })

  test('error: a broken file gives every problem with its path', () => {
    const text = `
[operator]
id = "Bad Name"
colour = "blue"
[chain]
rpc_url = "ftp://x"
chain_id = -1
private_key = "0xdeadbeef"
registry = "0x123"
escrow = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"
confirmations = 1.5
[tiers.basic]
min_replicas = 3
max_replicas = 1
[tiers.standard]
min_replicas = 2
max_replicas = 5
[tiers.premium]
min_replicas = 3
max_replicas = 20
[providers.local]
hourly_usd = 0.01
[[providers.ssh.hosts]]
name = "h1"
address = "10.0.0.1"
user = "root"
private_key = "env:NOPE"
host_key = "ssh-ed25519 AAAA"
vcpu = 2
memory_gib = 2
storage_gib = 2
hourly_usd = "0.1"
`
    const p = problems(text)
    expect(p).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^operator\.id: got "Bad Name", expected a lowercase name/),
        'operator.colour: unknown key',
        expect.stringMatching(/^chain\.rpc_url: got "ftp:\/\/x"/),
        expect.stringMatching(/^chain\.chain_id: got -1, expected a positive chain id/),
        expect.stringMatching(/^chain\.private_key: got a literal value, secrets must be a reference/),
        expect.stringMatching(/^chain\.registry: got "0x123", expected a 0x-prefixed 20-byte hex address/),
        expect.stringMatching(/^chain\.confirmations: got 1.5, expected an integer/),
        expect.stringMatching(/^providers\.local\.hourly_usd: got 0.01, /),
      ]),
    )
    expect(p.join('\n')).not.toContain('deadbeef')
    expect(p.length).toBeGreaterThanOrEqual(8)
  })

  test('error: a WebSocket RPC URL and an oversized batch are refused with their paths', () => {
    const text = minimal.replace('http://127.0.0.1:8545', 'wss://node.example/ws').replace('chain_id = 31337', 'chain_id = 31337\nrpc_batch_size = 5000')
    expect(problems(text)).toEqual([
      expect.stringMatching(/^chain\.rpc_url: got "wss:\/\/node\.example\/ws", expected the node's http\(s\) JSON-RPC URL/),
      expect.stringMatching(/^chain\.rpc_batch_size: got 5000/),
    ])
    expect(loadConfig(write(minimal.replace('chain_id = 31337', 'chain_id = 31337\nrpc_batch_size = 0')), { env }).chain.rpcBatchSize).toBe(0)
  })

  test('error: an SSH endpoint listening on every address needs public_host; with one it is kept', () => {
    const host = `[[providers.ssh.hosts]]\nname = "r1"\naddress = "10.0.0.2"\nuser = "deploy"\nprivate_key = "env:OPERATOR_PRIVATE_KEY"\nhost_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"\nvcpu = 2\nmemory_gib = 2\nstorage_gib = 10\nhourly_usd = "0.01"\n`
    expect(problems(`${minimal}\n[providers.ssh.endpoint]\nlisten = "0.0.0.0"\n${host}`)).toEqual([expect.stringMatching(/^providers\.ssh\.endpoint\.public_host: .*listen = "0\.0\.0\.0" needs public_host/)])
    const ok = loadConfig(write(`${minimal}\n[providers.ssh.endpoint]\nlisten = "0.0.0.0"\npublic_host = "ops.example.net"\n${host}`), { env })
    expect(ok.providers.ssh?.endpoint).toEqual({ listen: '0.0.0.0', public_host: 'ops.example.net', port_range: [30000, 30999] })
  })

  test('error: cross-field problems and unresolvable secrets are reported together', () => {
    const p = problems(
      minimal +
        `
[tiers.basic]
min_replicas = 3
max_replicas = 1
[tiers.standard]
min_replicas = 2
max_replicas = 5
[tiers.premium]
min_replicas = 3
max_replicas = 20
[defaults]
vcpu = 64
`,
    )
    expect(p).toEqual(['tiers.basic.max_replicas: got 1, expected >= min_replicas (3)', 'defaults.vcpu: got 64, above ceilings.vcpu (16)'])
    const q = problems(minimal, {})
    expect(q).toEqual(['chain.private_key: environment variable OPERATOR_PRIVATE_KEY is not set'])
  })

  test('error: missing sections and invalid TOML syntax', () => {
    expect(problems('[operator]\nid = "x"\n')).toEqual(['chain: missing, expected a table'])
    const syn = problems('[operator\nid = 1')
    expect(syn[0]).toMatch(/^line 1, column \d+: /)
  })

  test('args: file: secrets are read relative to the config file', () => {
    const f = write(minimal.replace('env:OPERATOR_PRIVATE_KEY', 'file:key.txt'))
    writeFileSync(join(f, '..', 'key.txt'), '0x' + 'cd'.repeat(32) + '\n', { mode: 0o600 })
    const c = loadConfig(f, { env: {} })
    expect(c.chain.privateKey.reveal()).toBe('0x' + 'cd'.repeat(32))
  })

  test('error: a key file its group or others can read is refused, naming the key\'s TOML path', () => {
    const f = write(minimal.replace('env:OPERATOR_PRIVATE_KEY', 'file:open-key.txt'))
    const key = join(f, '..', 'open-key.txt')
    writeFileSync(key, '0x' + 'ab'.repeat(32) + '\n', { mode: 0o600 })
    for (const mode of [0o640, 0o604, 0o644, 0o620]) {
      chmodSync(key, mode)
      let err: unknown
      try {
        loadConfig(f, { env: {} })
      } catch (e) {
        err = e
      }
      expect(err).toBeInstanceOf(ConfigError)
      expect((err as ConfigError).code).toBe('CONFIG_INVALID')
      expect((err as ConfigError).problems).toEqual([{ path: 'chain.private_key', message: `secret file open-key.txt is readable or writable by its group or others (mode 0${mode.toString(8)}): chmod 600 it` }])
      expect((err as Error).message).not.toContain('ab'.repeat(32))
    }
    chmodSync(key, 0o400)
    expect(loadConfig(f, { env: {} }).chain.privateKey.reveal()).toBe('0x' + 'ab'.repeat(32))
  })

  test('args: rpc_url and tfchain_url by reference (env: and file:), checked like literals and never echoed', () => {
    const url = 'https://eth.example.com/v3/0123456789abcdef0123456789abcdef?apikey=k-123456'
    const doc = minimal.replace(/rpc_url = "[^"]*"/, 'rpc_url = "env:RPC_URL"')
    expect(doc).toContain('env:RPC_URL')
    const f = write(`${doc}\n[pricing]\ntfchain_url = "file:tf-url.txt"\n`)
    writeFileSync(join(f, '..', 'tf-url.txt'), 'wss://tfchain.example.com/key/abcdef123456\n', { mode: 0o600 })
    const c = loadConfig(f, { env: { ...env, RPC_URL: url } })
    expect(c.chain.rpcUrl).toBe(url)
    expect(c.pricing.tfchainUrl).toBe('wss://tfchain.example.com/key/abcdef123456')
    let err: unknown
    try {
      loadConfig(f, { env: { ...env, RPC_URL: 'ftp://secret-host/abc' } })
    } catch (e) {
      err = e
    }
    expect((err as ConfigError).problems).toEqual([{ path: 'chain.rpc_url', message: "the value of env:RPC_URL is not the node's http(s) JSON-RPC URL (WebSocket endpoints are not used)" }])
    expect((err as Error).message).not.toContain('secret-host')
  })

  test('behavior: parseConfig validates an in-memory document', () => {
    const c = parseConfig(parse(minimal), { env })
    expect(c.http).toEqual({ enabled: true, host: '127.0.0.1', port: 9464 })
  })

  test('error: schema problems and unresolvable secrets are listed together', () => {
    const text = minimal.replace('[chain]', '[loop]\ninterval_ms = -1\n[http]\nadmin_token = "env:BPO_NOT_SET_ANYWHERE"\n[chain]')
    try {
      loadConfig(write(text), { env: {} })
      expect.unreachable()
    } catch (err) {
      const paths = (err as ConfigError).problems.map((p) => p.path)
      expect(paths).toEqual(expect.arrayContaining(['loop.interval_ms', 'chain.private_key', 'http.admin_token']))
    }
  })

  test('args: BPO_HTTP_LISTEN and BPO_DATA_DIR (set by the container image) win over the file', () => {
    const c = parseConfig(parse(minimal), { env: { ...env, BPO_HTTP_LISTEN: '0.0.0.0:9464', BPO_DATA_DIR: '/var/lib/blueprint-operator' } })
    expect(c.http).toMatchObject({ host: '0.0.0.0', port: 9464 })
    expect(c.operator.dataDir).toBe('/var/lib/blueprint-operator')
    expect(c.pricing.cacheDir).toBe('/var/lib/blueprint-operator/pricing')
  })
})
