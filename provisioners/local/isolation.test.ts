/**
 * Workload isolation on the local target: with `workloadUids`, every deployment runs as a uid of its own (no passwd
 * entry), recorded in its manifest and reused after a restart; a replica can read neither the daemon's environment,
 * its TOML and state, nor another deployment's data.
 */
import { execFileSync } from 'node:child_process'
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { createTestCommon } from '../../core/common.js'
import { startArtifactServer, type TestArtifactServer } from '../../test/helpers/artifact-server.js'
import { demoServicePath, readDemoInfo } from '../../test/helpers/demo-service.js'
import { resourceSpec } from '../../test/helpers/spec.js'
import type { DeploymentRequest } from '../types.js'
import { chooseWorkloadUid, localAccountsInRange, uidRangeProblems } from '../../core/workloadUids.js'
import { createLocalProvisioner, type LocalProvisionerParameters } from './createLocalProvisioner.js'
import { readManifest } from './manifest.js'
import { scanMarkedProcesses } from './proc.js'

const { common, shutdown } = createTestCommon()
const run = Math.random().toString(36).slice(2, 8)
const owner = `iso-${run}`
// a range no account of this machine uses (checked by the provisioner at construction)
const lo = 2_100_000 + Math.floor(Math.random() * 1000) * 100
const range: [number, number] = [lo, lo + 99]
const root = process.getuid?.() === 0
let server: TestArtifactServer
let daemonDir: string

/**
 * A replica that tries to read what it must not, recording each outcome in $DATA_DIR/attempts, writes a file of its
 * own, then becomes the demo service.
 */
const reader = `#!/bin/sh
r="$DATA_DIR/attempts"
: > "$r.tmp"
try() { if out=$( (eval "$2") 2>&1 >/dev/null ); then echo "$1=read"; else echo "$1=refused $out"; fi >> "$r.tmp"; }
try environ 'cat /proc/$DAEMON_PID/environ'
try toml 'cat "$DAEMON_DIR/operator.toml"'
try key 'cat "$DAEMON_DIR/operator.key"'
try state 'cat "$DAEMON_DIR/state.json"'
try state-dir 'ls "$DAEMON_DIR"'
try local-dir 'ls "$DAEMON_DIR/local"'
try deployments 'ls "$DAEMON_DIR/local/deployments"'
try cache 'ls "$DAEMON_DIR/local/cache"'
try other-data 'ls "$DAEMON_DIR/local/deployments/$OTHER/data"'
try other-file 'cat "$DAEMON_DIR/local/deployments/$OTHER/data/mine"'
try other-manifest 'cat "$DAEMON_DIR/local/deployments/$OTHER/manifest.json"'
try other-log 'cat "$DAEMON_DIR/local/deployments/$OTHER/logs/replica-0.log"'
try own-data 'echo secret-of-$DEPLOYMENT_ID > "$DATA_DIR/mine"'
mv "$r.tmp" "$r"
exec node '${demoServicePath}'
`

function params(o: Partial<LocalProvisionerParameters> = {}): LocalProvisionerParameters {
  return { rootDir: join(daemonDir, 'local'), operatorId: owner, healthTimeoutMs: 30_000, stopGraceMs: 3_000, artifactAllowHosts: ['127.0.0.1'], workloadUids: range, ...o }
}

function request(id: string, other: string): DeploymentRequest {
  return {
    deploymentId: id,
    serviceId: '7',
    blueprintId: '3',
    source: { kind: 'testing', url: server.urlOf('reader'), sha256: server.sha256('reader') },
    spec: resourceSpec({ vcpu: 0.25, memoryGiB: 0.25, storageGiB: 1, replicas: 1 }),
    env: { DAEMON_PID: String(process.pid), DAEMON_DIR: daemonDir, OTHER: other },
    healthPath: '/healthz',
  }
}

async function attempts(id: string): Promise<Record<string, string>> {
  const text = await readFile(join(daemonDir, 'local', 'deployments', id, 'data', 'attempts'), 'utf8')
  return Object.fromEntries(text.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]))
}

beforeAll(async () => {
  server = await startArtifactServer({ reader: Buffer.from(reader) })
  daemonDir = await mkdtemp(join(tmpdir(), 'bpo-iso-'))
  // what an operator's data dir looks like when the daemon runs isolated workloads: traversable, not listable
  await chmod(daemonDir, 0o711)
  await writeFile(join(daemonDir, 'operator.toml'), '[chain]\nrpc_url = "http://node/v3/secret"\n', { mode: 0o600 })
  await writeFile(join(daemonDir, 'operator.key'), '0xsecret\n', { mode: 0o600 })
  await writeFile(join(daemonDir, 'state.json'), '{"secret":true}', { mode: 0o600 })
  // a secret in the test process's (the "daemon's") environment, which /proc/<pid>/environ would show
  process.env.ISOLATION_CANARY = 'canary-in-the-daemon-environment'
})

afterAll(async () => {
  const left = await scanMarkedProcesses({ ownerKey: 'BPO_OWNER', owner, deploymentKey: 'BPO_DEPLOYMENT' })
  for (const p of left) {
    try {
      process.kill(p.pid, 'SIGKILL')
    } catch {
      // gone
    }
  }
  await server?.stop()
  await rm(daemonDir, { recursive: true, force: true })
  await shutdown()
  expect(left).toEqual([])
})

describe('workloadUids: pure rules', () => {
  test('default: the uid is deterministic, inside the range, and skips taken ones', () => {
    const a = chooseWorkloadUid('op\0bp-1-1', [5000, 5009], new Set())!
    expect(a).toBeGreaterThanOrEqual(5000)
    expect(a).toBeLessThanOrEqual(5009)
    expect(chooseWorkloadUid('op\0bp-1-1', [5000, 5009], new Set())).toBe(a)
    const b = chooseWorkloadUid('op\0bp-1-1', [5000, 5009], new Set([a]))!
    expect(b).not.toBe(a)
    expect(chooseWorkloadUid('x', [5000, 5001], new Set([5000, 5001]))).toBeUndefined()
  })

  test('error: bad ranges and ranges holding accounts', () => {
    expect(uidRangeProblems([10, 20])[0]).toMatch(/below 1000/)
    expect(uidRangeProblems([3000, 2000])[0]).toMatch(/above max/)
    expect(uidRangeProblems([1000, 2 ** 32])[0]).toMatch(/above/)
    expect(uidRangeProblems([1000.5, 2000])[0]).toMatch(/whole numbers/)
    expect(uidRangeProblems([100000, 100999])).toEqual([])
    expect(localAccountsInRange([0, 0])).toContain('user root (0)')
  })
})

describe('createLocalProvisioner: a uid per deployment', () => {
  test('behavior: two deployments run as two uids of the range; neither reads the daemon\'s environment, TOML, key, state, nor the other\'s files', { timeout: 120_000 }, async (ctx) => {
    if (!root) return ctx.skip('needs root')
    const prov = createLocalProvisioner(common, params())
    try {
      const a = await prov.provision(request('iso-a', 'iso-b'))
      const b = await prov.provision(request('iso-b', 'iso-a'))
      expect(a.replicasReady).toBe(1)
      expect(b.replicasReady).toBe(1)
      const ma = (await readManifest(join(daemonDir, 'local', 'deployments', 'iso-a')))!
      const mb = (await readManifest(join(daemonDir, 'local', 'deployments', 'iso-b')))!
      expect(ma.uid).toBeGreaterThanOrEqual(range[0])
      expect(ma.uid).toBeLessThanOrEqual(range[1])
      expect(mb.uid).toBeGreaterThanOrEqual(range[0])
      expect(mb.uid).not.toBe(ma.uid)
      for (const [m, st] of [[ma, a], [mb, b]] as const) {
        const { pid } = await readDemoInfo(st.endpoints[0]!)
        const status = await readFile(`/proc/${pid}/status`, 'utf8')
        expect(status).toMatch(new RegExp(`^Uid:\\s+${m.uid}\\s+${m.uid}\\s+${m.uid}\\s+${m.uid}$`, 'm'))
        expect(status).toMatch(new RegExp(`^Gid:\\s+${m.uid}\\s+${m.uid}\\s+${m.uid}\\s+${m.uid}$`, 'm'))
        expect(status).toMatch(/^Groups:\s*$/m)
        const data = await stat(join(daemonDir, 'local', 'deployments', m.deploymentId, 'data'))
        expect({ uid: data.uid, gid: data.gid, mode: data.mode & 0o777 }).toEqual({ uid: m.uid, gid: m.uid, mode: 0o700 })
      }
      // b started after a wrote its own file: b's attempts on a's files are the meaningful ones
      const seen = await attempts('iso-b')
      expect(seen['own-data']).toBe('read')
      for (const k of ['environ', 'toml', 'key', 'state', 'state-dir', 'local-dir', 'deployments', 'cache', 'other-data', 'other-file', 'other-manifest', 'other-log']) {
        expect(seen[k], k).toMatch(/^refused .*(Permission denied|Operation not permitted)/)
      }
      expect(await readFile(join(daemonDir, 'local', 'deployments', 'iso-a', 'data', 'mine'), 'utf8')).toBe('secret-of-iso-a\n')
      expect((await attempts('iso-a')).environ).toMatch(/^refused/)
    } finally {
      await prov.destroy('iso-a').catch(() => undefined)
      await prov.destroy('iso-b').catch(() => undefined)
      await prov.close()
    }
  })

  test('behavior: a restarted daemon reuses the recorded uid (scale to zero and back, and a new provisioner)', { timeout: 120_000 }, async (ctx) => {
    if (!root) return ctx.skip('needs root')
    const first = createLocalProvisioner(common, params())
    const id = 'iso-restart'
    try {
      const st = await first.provision(request(id, 'none'))
      const uid = (await readManifest(join(daemonDir, 'local', 'deployments', id)))!.uid!
      const { pid } = await readDemoInfo(st.endpoints[0]!)
      await first.close()
      // another deployment meanwhile (it must not get this uid)
      const again = createLocalProvisioner(common, params())
      const other = await again.provision(request('iso-other', 'none'))
      expect((await readManifest(join(daemonDir, 'local', 'deployments', 'iso-other')))!.uid).not.toBe(uid)
      await again.scale(id, 0)
      const back = await again.scale(id, 1)
      const info = await readDemoInfo(back.endpoints[0]!)
      expect(info.pid).not.toBe(pid)
      expect(await readFile(`/proc/${info.pid}/status`, 'utf8')).toMatch(new RegExp(`^Uid:\\s+${uid}\\s`, 'm'))
      expect((await readManifest(join(daemonDir, 'local', 'deployments', id)))!.uid).toBe(uid)
      expect(other.replicasReady).toBe(1)
      await again.destroy('iso-other')
      await again.destroy(id)
      await again.close()
    } finally {
      const cleanup = createLocalProvisioner(common, params())
      await cleanup.destroy(id).catch(() => undefined)
      await cleanup.destroy('iso-other').catch(() => undefined)
      await cleanup.close()
    }
  })

  test('error: NO_FREE_UID when every uid of the range is held (retryable); a destroyed deployment frees its uid', { timeout: 120_000 }, async (ctx) => {
    if (!root) return ctx.skip('needs root')
    const one: [number, number] = [range[1] + 1000, range[1] + 1000]
    const prov = createLocalProvisioner(common, params({ workloadUids: one, rootDir: join(daemonDir, 'one-uid') }))
    try {
      await prov.provision(request('iso-one', 'none'))
      await expect(prov.provision(request('iso-two', 'none'))).rejects.toMatchObject({ code: 'NO_FREE_UID', retryable: true, reason: 'NO_FEASIBLE_OFFER' })
      await prov.destroy('iso-one')
      const st = await prov.provision(request('iso-two', 'none'))
      expect(await readFile(`/proc/${(await readDemoInfo(st.endpoints[0]!)).pid}/status`, 'utf8')).toMatch(new RegExp(`^Uid:\\s+${one[0]}\\s`, 'm'))
    } finally {
      await prov.destroy('iso-one').catch(() => undefined)
      await prov.destroy('iso-two').catch(() => undefined)
      await prov.close()
    }
  })

  test('error: a range holding an account, a bad range, both modes at once, or a daemon that is not root are refused at construction', async () => {
    const make = (o: Partial<LocalProvisionerParameters>) => () => createLocalProvisioner(common, params(o))
    if (root) expect(make({ workloadUids: [0, 2000] })).toThrow(/below 1000/)
    if (root) {
      const nobody = Number(execFileSync('id', ['-u', 'nobody'], { encoding: 'utf8' }).trim())
      expect(make({ workloadUids: [nobody, nobody + 1] })).toThrow(/holds existing accounts .*nobody/)
    }
    expect(make({ workloadUser: 'nobody' })).toThrow(/exclude each other/)
    // not root: run the factory as nobody
    if (!root) return
    const script = `import('${new URL('./createLocalProvisioner.ts', import.meta.url).pathname}').then((m) => {
  try { m.createLocalProvisioner({ logger: {}, metrics: {} }, { rootDir: '/nonexistent', operatorId: 'o', workloadUids: [${range.join(', ')}] }); console.log('CREATED') }
  catch (e) { console.log('REFUSED', e.code, e.message) }
})`
    const out = execFileSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--', process.execPath, '--import', 'tsx', '-e', script], {
      cwd: new URL('../../', import.meta.url).pathname,
      encoding: 'utf8',
      timeout: 60_000,
    })
    expect(out).toMatch(/^REFUSED CONFIG_INVALID workloadUids needs the daemon to run as root \(it runs as uid 65534\)$/m)
  })
})
