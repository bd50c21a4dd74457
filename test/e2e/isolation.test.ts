/**
 * Workload isolation through `blueprint-operator run` (a real daemon child process, a real anvil chain): with
 * `[providers.local] workload_uids`, two customers' services run as two uids of the range, and a replica reads neither
 * the daemon's environment (/proc/<daemon pid>/environ, the private key passed by env:), its TOML, its state dir, nor
 * the other service's data. Without a range (or opt-in), `run` refuses to start.
 */
import { spawnSync } from 'node:child_process'
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { stringify } from 'smol-toml'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { binPath, demoServicePath, startChild, startStack, waitFor, type Stack } from '../helpers/stack.js'

const lo = 2_500_000 + Math.floor(Math.random() * 1000) * 100

// tries what it must not, as whatever uid it runs as; records each outcome in its data dir, then serves
const reader = `#!/bin/sh
r="$DATA_DIR/attempts"
: > "$r.tmp"
try() { if out=$( (eval "$2") 2>&1 >/dev/null ); then echo "$1=read"; else echo "$1=refused $out"; fi >> "$r.tmp"; }
d=$(cd "$DATA_DIR/../../../.." && pwd)
pre=\${DEPLOYMENT_ID%-*}
try environ 'cat /proc/$PPID/environ'
try toml 'cat "$d/operator.toml"'
try state 'cat "$d/state.sqlite"'
try state-dir 'ls "$d"'
for n in 1 2 3; do [ "$pre-$n" = "$DEPLOYMENT_ID" ] && continue; [ -d "$d/local/deployments/$pre-$n" ] || continue; try other-data 'ls "$d/local/deployments/$pre-$n/data"'; try other-file 'cat "$d/local/deployments/$pre-$n/data/mine"'; done
try own-data 'echo mine > "$DATA_DIR/mine"'
mv "$r.tmp" "$r"
exec node '${demoServicePath}'
`

const parseAttempts = (text: string): Record<string, string> => Object.fromEntries(text.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]))

describe('e2e: workload isolation', () => {
  let stack: Stack
  let child: ReturnType<typeof startChild> | undefined
  beforeAll(async () => {
    stack = await startStack({ loopMs: 300 })
    const local = (stack.doc.providers as Record<string, Record<string, unknown>>).local!
    delete local.unsafe_workloads_share_daemon_uid
    local.workload_uids = [lo, lo + 99]
    stack.artifacts.put('reader', reader)
  })
  afterAll(async () => {
    child?.child.kill('SIGKILL')
    await stack?.stop()
  })

  test('behavior: two services run as two uids; a replica reads neither /proc/<daemon>/environ, the TOML, the state nor the other\'s data', { timeout: 180_000 }, async (ctx) => {
    if (process.getuid?.() !== 0) return ctx.skip('needs root')
    const { chain } = stack
    const blueprintId = await stack.registerDemo({ url: stack.artifacts.urlOf('reader'), sha256: stack.artifacts.sha256('reader'), name: 'reader' })
    child = startChild(stack)
    await chain.customer.mint(10_000_000n)
    const one = await chain.customer.requestService({ blueprintId, operator: chain.operatorAddress, tier: 0, ttlSeconds: 3600n, deposit: 600_000n })
    await waitFor('service one active', () => stack.service(one.serviceId)?.state === 'active', 60_000)
    const two = await chain.customer.requestService({ blueprintId, operator: chain.operatorAddress, tier: 0, ttlSeconds: 3600n, deposit: 600_000n })
    await waitFor('service two active', () => stack.service(two.serviceId)?.state === 'active', 60_000)
    const dep = (id: bigint) => join(stack.dataDir, 'local', 'deployments', `bp-${chain.chainId}-${id}`)
    const uidOf = (id: bigint) => (JSON.parse(readFileSync(join(dep(id), 'manifest.json'), 'utf8')) as { uid: number }).uid
    const [u1, u2] = [uidOf(one.serviceId), uidOf(two.serviceId)]
    expect(u1).toBeGreaterThanOrEqual(lo)
    expect(u2).toBeLessThanOrEqual(lo + 99)
    expect(u1).not.toBe(u2)
    expect(statSync(stack.dataDir).mode & 0o777).toBe(0o711)
    const seen = parseAttempts(readFileSync(join(dep(two.serviceId), 'data', 'attempts'), 'utf8'))
    expect(seen['own-data']).toBe('read')
    for (const k of ['environ', 'toml', 'state', 'state-dir', 'other-data', 'other-file']) expect(seen[k], k).toMatch(/^refused .*(Permission denied|Operation not permitted)/)
    // the daemon's key is in its environment (passed by env:), which is exactly what the replica could not read
    expect(readFileSync(`/proc/${child.child.pid}/environ`, 'latin1')).toContain(stack.operatorKey)
    child.child.kill('SIGTERM')
    expect(await child.exited).toBe(0)
    child = undefined
  })
})

describe('e2e: run refuses workloads that would share its uid', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bpo-refuse-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))
  const doc = (local: Record<string, unknown>) => ({
    operator: { id: 'refuse', data_dir: join(dir, 'data') },
    chain: { rpc_url: 'http://127.0.0.1:9', chain_id: 31337, private_key: 'env:KEY', registry: `0x${'1'.repeat(40)}`, escrow: `0x${'2'.repeat(40)}` },
    http: { enabled: false },
    providers: { local: { enabled: true, ...local } },
  })
  const run = (d: unknown, mode = 0o600) => {
    const file = join(dir, 'operator.toml')
    writeFileSync(file, stringify(d as Record<string, unknown>))
    chmodSync(file, mode)
    return spawnSync(process.execPath, [binPath, 'run', '--config', file], { env: { PATH: process.env.PATH, KEY: `0x${'ab'.repeat(32)}` }, encoding: 'utf8', timeout: 60_000 })
  }

  test('error: no workload_uids and no opt-in: exit 1, CONFIG_INVALID naming providers.local.workload_uids and the opt-in', () => {
    const r = run(doc({}))
    expect(r.status).toBe(1)
    expect(r.stderr).toMatch(/1 problem in the configuration/)
    expect(r.stderr).toMatch(/providers\.local\.workload_uids: missing: local replicas would run as the daemon's own uid \d+ .*unsafe_workloads_share_daemon_uid = true/)
    expect(r.stderr).not.toContain('ab'.repeat(32))
  })

  test('error: workload_uids with a TOML every user can read: exit 1 naming the file', (ctx) => {
    if (process.getuid?.() !== 0) return ctx.skip('needs root')
    const r = run(doc({ workload_uids: [lo, lo + 9] }), 0o644)
    expect(r.status).toBe(1)
    expect(r.stderr).toMatch(/operator\.toml is readable by every user \(mode 644\), workloads included: chmod o-r it/)
  })

  test('error: a key file others can read: exit 1 naming chain.private_key', () => {
    writeFileSync(join(dir, 'key'), `0x${'cd'.repeat(32)}`, { mode: 0o644 })
    chmodSync(join(dir, 'key'), 0o644)
    const d = doc({ unsafe_workloads_share_daemon_uid: true })
    d.chain.private_key = 'file:key'
    const r = run(d)
    expect(r.status).toBe(1)
    expect(r.stderr).toMatch(/chain\.private_key: secret file key is readable or writable by its group or others \(mode 0644\): chmod 600 it/)
    expect(r.stderr).not.toContain('cd'.repeat(32))
  })
})
