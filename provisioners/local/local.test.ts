import { execFileSync, spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { chmod, lstat, mkdir, mkdtemp, readFile, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { createTestCommon } from '../../core/common.js'
import { isRetryable } from '../../core/errors.js'
import { startArtifactServer, type TestArtifactServer } from '../../test/helpers/artifact-server.js'
import { crashingArtifact, demoServiceArtifact, demoServicePath, escapingArtifact, runnableDemoServicePath, markerArtifact, probeDemo, readDemoInfo } from '../../test/helpers/demo-service.js'
import { runProvisionerContract } from '../../test/provisioner-contract/suite.js'
import type { DeploymentRequest, Provisioner } from '../types.js'
import { detectCgroups } from './cgroups.js'
import { createLocalProvisioner, type LocalProvisionerParameters } from './createLocalProvisioner.js'
import { readManifest, writeManifest } from './manifest.js'
import { isSameProcess, readProcStat, scanMarkedProcesses } from './proc.js'
import { resourceSpec } from '../../test/helpers/spec.js'

const { common, shutdown } = createTestCommon()
const run = Math.random().toString(36).slice(2, 8)
const owners: string[] = []
const roots: string[] = []
let server: TestArtifactServer

const spec = (replicas: number) => resourceSpec({ vcpu: 0.5, memoryGiB: 0.25, storageGiB: 1, replicas })

function request(deploymentId: string, replicas = 1, artifact = 'demo'): DeploymentRequest {
  return {
    deploymentId,
    serviceId: '7',
    blueprintId: '3',
    source: { kind: 'testing', url: server.urlOf(artifact), sha256: server.sha256(artifact) },
    spec: spec(replicas),
    env: { GREETING: 'hello' },
    healthPath: '/healthz',
  }
}

async function newRoot() {
  const dir = await mkdtemp(join(tmpdir(), 'bpo-local-'))
  roots.push(dir)
  return dir
}

function params(rootDir: string, operatorId: string, o: Partial<LocalProvisionerParameters> = {}): LocalProvisionerParameters {
  if (!owners.includes(operatorId)) owners.push(operatorId)
  // the test artifact server listens on 127.0.0.1, which downloads may reach only when allowed
  return { rootDir, operatorId, healthTimeoutMs: 45_000, stopGraceMs: 5_000, artifactAllowHosts: ['127.0.0.1'], ...o }
}

async function leftovers(): Promise<number[]> {
  const pids: number[] = []
  for (const owner of owners) {
    const found = await scanMarkedProcesses({ ownerKey: 'BPO_OWNER', owner, deploymentKey: 'BPO_DEPLOYMENT' })
    pids.push(...found.map((f) => f.pid))
  }
  return pids
}

beforeAll(async () => {
  server = await startArtifactServer({ demo: demoServiceArtifact(), crash: crashingArtifact('demo: cannot start, config missing') })
})

afterAll(async () => {
  const left = await leftovers()
  for (const pid of left) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      // already gone
    }
  }
  await server?.stop()
  for (const r of roots) await rm(r, { recursive: true, force: true })
  await shutdown()
  // every process a test started is gone (checked by a /proc scan of the ownership markers)
  expect(left).toEqual([])
})

runProvisionerContract('local', async () => {
  const root = await newRoot()
  const otherRoot = await newRoot()
  const me = `contract-${run}`
  const provisioner = createLocalProvisioner(common, params(root, me))
  const otherOperator = createLocalProvisioner(common, params(otherRoot, `contract-other-${run}`))
  return {
    provisioner,
    otherOperator,
    reopen: async () => createLocalProvisioner(common, params(root, me)),
    makeRequest: (id, o) => request(id, o?.replicas ?? 1),
    probe: (endpoint) => probeDemo(endpoint),
    supportsDataKeep: true,
    reportsUsage: true,
    async teardown() {
      await provisioner.close()
      await otherOperator.close()
    },
  }
})

describe('createLocalProvisioner', () => {
  let root: string
  let prov: Provisioner
  const owner = `local-${run}`
  beforeAll(async () => {
    root = await newRoot()
    prov = createLocalProvisioner(common, params(root, owner))
  })
  afterAll(async () => {
    for (const name of await readdir(join(root, 'deployments')).catch(() => [] as string[])) await prov.destroy(name)
    await prov.close()
  })

  test('default: replicas get the environment, the data dir and a port from the range', async () => {
    const p = createLocalProvisioner(common, params(root, owner, { portRange: [23100, 23199] }))
    const st = await p.provision(request('env-1', 2))
    expect(st.replicasReady).toBe(2)
    for (const e of [...st.endpoints, ...st.replicaEndpoints!]) expect(Number(new URL(e).port)).toBeGreaterThanOrEqual(23100)
    const infos = await Promise.all(st.replicaEndpoints!.map((e) => readDemoInfo(e)))
    expect(infos.map((i) => i.replica).sort()).toEqual([0, 1])
    expect(infos[0]).toMatchObject({ service: '7', blueprint: '3', deployment: 'env-1' })
    const m = await readManifest(join(root, 'deployments', 'env-1'))
    const pid = m!.replicaRecords[0]!.pid!
    const env = (await readFile(`/proc/${pid}/environ`, 'utf8')).split('\0')
    expect(env).toContain('GREETING=hello')
    expect(env).toContain(`BPO_OWNER=${owner}`)
    expect(env).toContain('BPO_DEPLOYMENT=env-1')
    expect(env).toContain(`DATA_DIR=${join(root, 'deployments', 'env-1', 'data')}`)
    // the daemon's own secrets never reach a workload
    expect(env.some((l) => l.startsWith('VITEST'))).toBe(false)
    await p.destroy('env-1')
    expect(existsSync(join(root, 'deployments', 'env-1'))).toBe(false)
  })

  test('error: an sha256 mismatch is refused before the artifact is ever executed', async () => {
    const marker = join(root, 'marker-was-run')
    server.put('evil', markerArtifact(marker))
    const req = request('bad-1')
    // a digest whose bytes are not in the cache (a cached digest is served from the cache, whatever the URL)
    const expected = createHash('sha256').update('the bytes the developer registered').digest('hex')
    req.source = { kind: 'native', url: server.urlOf('evil'), sha256: expected }
    const err = await prov.provision(req).then(
      () => undefined,
      (e: unknown) => e as { code: string; reason: string },
    )
    expect(err?.code).toBe('ARTIFACT_DIGEST_MISMATCH')
    expect(err?.reason).toBe('ARTIFACT_DIGEST_MISMATCH')
    expect(isRetryable(err)).toBe(false)
    expect(existsSync(marker)).toBe(false)
    expect(await readdir(join(root, 'cache', 'sha256'))).not.toContain(expected)
    expect(await readdir(join(root, 'cache', 'sha256'))).not.toContain(server.sha256('evil'))
    expect(await readdir(join(root, 'cache', 'tmp'))).toEqual([])
    expect((await prov.status('bad-1')).exists).toBe(false)
    expect((await prov.listOwned()).filter((r) => r.deploymentId === 'bad-1')).toEqual([])
    // the control: the same artifact with its right digest does run and creates the marker
    req.source = { kind: 'native', url: server.urlOf('evil'), sha256: server.sha256('evil') }
    req.healthPath = '/'
    await expect(createLocalProvisioner(common, params(root, owner, { healthTimeoutMs: 3_000 })).provision(req)).rejects.toMatchObject({ code: 'HEALTH_TIMEOUT' })
    expect(existsSync(marker)).toBe(true)
    await prov.destroy('bad-1')
  })

  test('error: an artifact rewritten in the cache while a replica stops is never run; the verified bytes are fetched again', async () => {
    const marker = join(root, 'tampered-artifact-ran')
    // (mkdtemp paths need no quoting inside the trap's single-quoted text)
    const evil = `#!/bin/sh\\ntouch ${marker}\\nexec sleep 1000\\n`
    // on SIGTERM it overwrites every cached artifact (and deployment copy) it can reach, then exits
    server.put(
      'tamper-v1',
      `#!/bin/sh
node '${demoServicePath}' & child=$!
trap 'for f in "$DATA_DIR"/../../../cache/sha256/* "$DATA_DIR"/../bin/*; do printf "${evil}" > "$f"; done; kill $child; exit 0' TERM
wait
`,
    )
    server.put('tamper-v2', Buffer.concat([demoServiceArtifact(), Buffer.from('\n// v2\n')]))
    const p = createLocalProvisioner(common, params(root, owner, { healthTimeoutMs: 8_000 }))
    expect((await p.provision(request('tamper-1', 1, 'tamper-v1'))).replicasReady).toBe(1)
    const before = server.hits('tamper-v2')
    const st = await p.provision(request('tamper-1', 1, 'tamper-v2')).catch((e: unknown) => e as Error)
    expect(existsSync(marker)).toBe(false)
    expect(st).toMatchObject({ replicasReady: 1 })
    // v2 was downloaded, overwritten by the stopping v1, then downloaded again
    expect(server.hits('tamper-v2')).toBe(before + 2)
    await p.destroy('tamper-1')
  })

  test('error: an unreachable artifact URL is retryable and leaves nothing', async () => {
    const req = request('unreach-1')
    const notCached = createHash('sha256').update('not in the cache').digest('hex')
    req.source = { kind: 'native', url: 'http://user:pw@127.0.0.1:9/demo', sha256: notCached }
    const err = await prov.provision(req).then(
      () => undefined,
      (e: unknown) => e as { reason: string; message: string },
    )
    expect(err?.reason).toBe('ARTIFACT_UNREACHABLE')
    expect(isRetryable(err)).toBe(true)
    expect(err?.message).not.toContain('pw@')
    expect((await prov.status('unreach-1')).exists).toBe(false)
    server.fail('gone', 'notFound')
    req.source = { kind: 'native', url: server.urlOf('gone'), sha256: notCached }
    const e404 = await prov.provision(req).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(isRetryable(e404)).toBe(false)
  })

  test('error: a replica that exits at once fails with the tail of its log', async () => {
    const err = await prov.provision(request('crash-1', 1, 'crash')).then(
      () => undefined,
      (e: unknown) => e as { code: string; details: string[]; retryable: boolean },
    )
    expect(err?.code).toBe('PROVISION_FAILED')
    expect(err?.retryable).toBe(true) // tried again (a port taken at the bind, memory short) before a refund
    expect(err?.details.join('\n')).toContain('demo: cannot start, config missing')
    await prov.destroy('crash-1')
    expect((await prov.status('crash-1')).exists).toBe(false)
  })

  test('error: invalid requests and unsupported sources', async () => {
    const bad = request('Bad_Id')
    await expect(prov.provision(bad)).rejects.toMatchObject({ code: 'REQUEST_INVALID', reason: 'MALFORMED_REQUEST' })
    const envBad = request('env-bad')
    envBad.env = { PORT: '1', 'lower-case': 'x' }
    await expect(prov.provision(envBad)).rejects.toMatchObject({ code: 'ENV_REFUSED', reason: 'MALFORMED_REQUEST' })
    envBad.env = { LD_PRELOAD: '/tmp/evil.so' }
    await expect(prov.provision(envBad)).rejects.toMatchObject({ code: 'ENV_REFUSED', reason: 'MALFORMED_REQUEST' })
    const container = request('ctr-1')
    container.source = { kind: 'container', image: 'localhost:5000/echo', digest: `sha256:${'0'.repeat(64)}` }
    // container sources run where podman works (test/local/container.test.ts); with containers off they are refused
    const noContainers = createLocalProvisioner(common, params(root, owner, { containers: 'off' }))
    expect(noContainers.sourceKinds).toEqual(['native', 'testing'])
    await expect(noContainers.provision(container)).rejects.toMatchObject({ code: 'SOURCE_KIND_UNSUPPORTED' })
    await noContainers.close()
    await expect(prov.scale('nope-1', 1)).rejects.toMatchObject({ code: 'DEPLOYMENT_NOT_FOUND' })
    expect((await prov.status('ctr-1')).exists).toBe(false)
  })

  test('behavior: a daemon killed with SIGKILL leaves replicas running; a new instance adopts them without duplicates', async () => {
    const script = `
      import { createTestCommon } from ${JSON.stringify(fileURLToPath(new URL('../../core/common.ts', import.meta.url)))}
      import { createLocalProvisioner } from ${JSON.stringify(fileURLToPath(new URL('./createLocalProvisioner.ts', import.meta.url)))}
      const { common } = createTestCommon()
      const p = createLocalProvisioner(common, ${JSON.stringify(params(root, owner))})
      const st = await p.provision(${JSON.stringify(request('crash-adopt', 2))})
      console.log('READY ' + JSON.stringify(st.replicaEndpoints))
      setInterval(() => {}, 1000)
    `
    const scriptPath = join(root, `daemon-${run}.mts`)
    await writeFile(scriptPath, script)
    try {
      const daemon = spawn(process.execPath, ['--import', 'tsx', scriptPath], { cwd: process.cwd(), stdio: ['ignore', 'pipe', 'inherit'] })
      const endpoints = await new Promise<string[]>((resolve, reject) => {
        let out = ''
        daemon.stdout!.on('data', (d: Buffer) => {
          out += d.toString()
          const m = /READY (.*)\n/.exec(out)
          if (m) resolve(JSON.parse(m[1]!) as string[])
        })
        daemon.once('exit', (code) => reject(new Error(`daemon exited ${code}: ${out}`)))
      })
      daemon.kill('SIGKILL')
      await new Promise((r) => daemon.once('exit', r))
      expect(await Promise.all(endpoints.map((e) => probeDemo(e)))).toEqual([true, true])
      const before = (await prov.listOwned()).filter((r) => r.kind === 'process' && r.deploymentId === 'crash-adopt').map((r) => r.id).sort()
      expect(before).toHaveLength(2)
      const again = await createLocalProvisioner(common, params(root, owner)).provision(request('crash-adopt', 2))
      expect(again.replicaEndpoints!.sort()).toEqual([...endpoints].sort())
      const after = (await prov.listOwned()).filter((r) => r.kind === 'process' && r.deploymentId === 'crash-adopt').map((r) => r.id).sort()
      expect(after).toEqual(before)
      await prov.destroy('crash-adopt')
    } finally {
      await rm(scriptPath, { force: true })
    }
  })

  test('behavior: a process started but not yet recorded (crash between spawn and record) is adopted from /proc', async () => {
    const st = await prov.provision(request('unrec-1'))
    const dir = join(root, 'deployments', 'unrec-1')
    const m = (await readManifest(dir))!
    const pid = m.replicaRecords[0]!.pid!
    delete m.replicaRecords[0]!.pid
    delete m.replicaRecords[0]!.startTime
    await writeManifest(dir, m)
    const again = await createLocalProvisioner(common, params(root, owner)).provision(request('unrec-1'))
    expect(again.endpoints).toEqual(st.endpoints)
    expect((await readManifest(dir))!.replicaRecords[0]!.pid).toBe(pid)
    await prov.destroy('unrec-1')
  })

  test('behavior: a reused pid is never taken for a replica, nor killed', async () => {
    await prov.provision(request('reuse-1'))
    const dir = join(root, 'deployments', 'reuse-1')
    const m = (await readManifest(dir))!
    const rec = m.replicaRecords[0]!
    process.kill(rec.pid!, 'SIGKILL')
    while (await isSameProcess(rec.pid!, rec.startTime!)) await new Promise((r) => setTimeout(r, 50))
    // an unrelated process now "has" the recorded pid: same pid number in the manifest, different start time
    const stranger = spawn('sleep', ['300'], { stdio: 'ignore' })
    try {
      const st = (await readProcStat(stranger.pid!))!
      rec.pid = stranger.pid!
      await writeManifest(dir, m)
      expect(st.startTime).not.toBe(rec.startTime)
      const before = await prov.status('reuse-1')
      expect(before.replicasReady).toBe(0)
      const after = await prov.restart('reuse-1')
      expect(after.replicasReady).toBe(1)
      expect(await isSameProcess(stranger.pid!, st.startTime)).toBe(true)
      await prov.destroy('reuse-1')
      expect(await isSameProcess(stranger.pid!, st.startTime)).toBe(true)
    } finally {
      stranger.kill('SIGKILL')
    }
  })

  test('behavior: restart replaces a dead replica and keeps the data', async () => {
    const st = await prov.provision(request('restart-1'))
    const info = await readDemoInfo(st.endpoints[0]!)
    process.kill(info.pid, 'SIGKILL')
    while ((await prov.status('restart-1')).replicasReady > 0) await new Promise((r) => setTimeout(r, 50))
    const after = await prov.restart('restart-1')
    expect(after.replicasReady).toBe(1)
    // the replica's port is persisted and reused
    expect(after.endpoints).toEqual(st.endpoints)
    const next = await readDemoInfo(after.endpoints[0]!)
    expect(next.pid).not.toBe(info.pid)
    expect(next.starts).toBe(info.starts + 1)
    await prov.destroy('restart-1')
  })

  test('behavior: destroy kills leaked processes found only by their markers', async () => {
    await prov.provision(request('leak-1', 2))
    // the manifest is lost, the processes are not
    await rm(join(root, 'deployments', 'leak-1', 'manifest.json'))
    const st = await prov.status('leak-1')
    expect(st.exists).toBe(true)
    expect((await prov.listOwned()).filter((r) => r.deploymentId === 'leak-1' && r.kind === 'process')).toHaveLength(2)
    await prov.destroy('leak-1')
    expect((await prov.listOwned()).filter((r) => r.deploymentId === 'leak-1')).toEqual([])
  })

  test('behavior: scale(0) leaves no process and keeps the data directory; two replicas share it afterwards', async () => {
    const st = await prov.provision(request('data-1'))
    const first = await readDemoInfo(st.endpoints[0]!)
    await prov.scale('data-1', 0)
    expect(await scanMarkedProcesses({ ownerKey: 'BPO_OWNER', owner, deploymentKey: 'BPO_DEPLOYMENT', deploymentId: 'data-1' })).toEqual([])
    const dataDir = join(root, 'deployments', 'data-1', 'data')
    expect(await readFile(join(dataDir, 'starts.count'), 'utf8')).toBe(String(first.starts))
    const back = await prov.scale('data-1', 2)
    expect(back.replicasReady).toBe(2)
    const infos = await Promise.all(back.replicaEndpoints!.map((e) => readDemoInfo(e)))
    expect(Math.max(...infos.map((i) => i.starts))).toBe(first.starts + 2)
    await prov.destroy('data-1')
    expect(existsSync(dataDir)).toBe(false)
  })

  test('behavior: another operator sharing the rootDir neither sees nor touches this deployment', async () => {
    const st = await prov.provision(request('shared-1'))
    const intruder = createLocalProvisioner(common, params(root, `intruder-${run}`))
    expect((await intruder.status('shared-1')).exists).toBe(false)
    await intruder.destroy('shared-1')
    await expect(intruder.provision(request('shared-1'))).rejects.toMatchObject({ code: 'DEPLOYMENT_FOREIGN' })
    expect((await intruder.listOwned()).filter((r) => r.deploymentId === 'shared-1')).toEqual([])
    expect(await probeDemo(st.endpoints[0]!)).toBe(true)
    expect((await prov.status('shared-1')).replicasReady).toBe(1)
    await prov.destroy('shared-1')
  })

  test('behavior: cgroup limits are applied to every replica when the host offers them', async (ctx) => {
    const cg = await detectCgroups({ mode: 'auto', owner })
    if (cg.mode === 'none') return ctx.skip(`no writable cgroups here: ${cg.reason}`)
    const st = await prov.provision(request('cg-1'))
    const m = (await readManifest(join(root, 'deployments', 'cg-1')))!
    const rec = m.replicaRecords[0]!
    expect(rec.cgroups!.length).toBeGreaterThan(0)
    for (const procs of rec.cgroups!) expect((await readFile(procs, 'utf8')).split('\n')).toContain(String(rec.pid))
    const dirs = rec.cgroups!.map((f) => join(f, '..'))
    if (cg.mode === 'v1') {
      const mem = dirs.find((d) => d.includes('/memory/'))!
      const cpu = dirs.find((d) => d.includes('/cpu/'))!
      expect(await readFile(join(mem, 'memory.limit_in_bytes'), 'utf8')).toBe(`${0.25 * 1024 ** 3}\n`)
      expect(await readFile(join(cpu, 'cpu.cfs_quota_us'), 'utf8')).toBe('50000\n')
    }
    expect(st.replicasReady).toBe(1)
    await prov.destroy('cg-1')
    for (const d of dirs) expect(existsSync(d)).toBe(false)
    for (const d of dirs) expect(existsSync(join(d, '..'))).toBe(false)
  })

  const running = async (pid: number) => {
    const st = await readProcStat(pid)
    return !!st && st.state !== 'Z' && st.state !== 'X'
  }
  async function escapeePid(id: string): Promise<number> {
    const file = join(root, 'deployments', id, 'data', 'escapee.pid')
    for (let i = 0; i < 200 && !existsSync(file); i++) await new Promise((r) => setTimeout(r, 50))
    return Number((await readFile(file, 'utf8')).trim())
  }

  test('behavior: destroy kills a child that left the replica\'s process group and session and cleared its environment', async (ctx) => {
    const cg = await detectCgroups({ mode: 'auto', owner })
    if (cg.mode === 'none') return ctx.skip(`no writable cgroups here: ${cg.reason}`)
    server.put('escape', escapingArtifact())
    const st = await prov.provision(request('esc-1', 1, 'escape'))
    expect(st.replicasReady).toBe(1)
    const rec = (await readManifest(join(root, 'deployments', 'esc-1')))!.replicaRecords[0]!
    const escapee = await escapeePid('esc-1')
    expect(await running(escapee)).toBe(true)
    expect((await readProcStat(escapee))!.pgrp).not.toBe((await readProcStat(rec.pid!))!.pgrp)
    // no marker: only the cgroup still ties it to the replica
    expect((await scanMarkedProcesses({ ownerKey: 'BPO_OWNER', owner, deploymentKey: 'BPO_DEPLOYMENT' })).map((p) => p.pid)).not.toContain(escapee)
    for (const procs of rec.cgroups!) expect((await readFile(procs, 'utf8')).split('\n')).toContain(String(escapee))
    await prov.destroy('esc-1')
    expect(await running(escapee)).toBe(false)
    for (const procs of rec.cgroups!) expect(existsSync(join(procs, '..'))).toBe(false)
    expect((await prov.listOwned()).filter((r) => r.deploymentId === 'esc-1')).toEqual([])
  })

  test('behavior: listOwned reports a populated cgroup whose processes carry no marker, so the sweep can destroy it', async (ctx) => {
    const cg = await detectCgroups({ mode: 'auto', owner })
    if (cg.mode === 'none') return ctx.skip(`no writable cgroups here: ${cg.reason}`)
    server.put('escape', escapingArtifact())
    await prov.provision(request('esc-2', 1, 'escape'))
    const dir = join(root, 'deployments', 'esc-2')
    const rec = (await readManifest(dir))!.replicaRecords[0]!
    const escapee = await escapeePid('esc-2')
    // the replica itself dies and the record is lost: what remains is the escapee in its cgroup
    process.kill(-rec.pid!, 'SIGKILL')
    while (await running(rec.pid!)) await new Promise((r) => setTimeout(r, 50))
    await rm(join(dir, 'manifest.json'))
    expect(await running(escapee)).toBe(true)
    const owned = (await prov.listOwned()).filter((r) => r.deploymentId === 'esc-2')
    expect(owned.map((r) => r.kind)).toContain('cgroup')
    expect(owned.filter((r) => r.kind === 'process')).toEqual([])
    expect((await prov.status('esc-2')).exists).toBe(true)
    await prov.destroy('esc-2')
    expect(await running(escapee)).toBe(false)
    for (const procs of rec.cgroups!) expect(existsSync(join(procs, '..'))).toBe(false)
    expect((await prov.listOwned()).filter((r) => r.deploymentId === 'esc-2')).toEqual([])
  })

  test('behavior: a memory limit is enforced (an allocation above it is killed)', async (ctx) => {
    const cg = await detectCgroups({ mode: 'auto', owner })
    if (cg.mode === 'none') return ctx.skip(`no writable cgroups here: ${cg.reason}`)
    // a service that answers health, then allocates 200 MiB when asked
    server.put(
      'hog',
      `#!/usr/bin/env node
const http = require('node:http'); const keep = []
http.createServer((q, s) => { if (q.url === '/hog') { for (let i = 0; i < 20; i++) keep.push(Buffer.alloc(10 * 1024 * 1024, 1)) } s.end('ok') }).listen(Number(process.env.PORT), process.env.HOST)
`,
    )
    const req = request('hog-1', 1, 'hog')
    req.spec.memoryGiB = 0.125
    const st = await prov.provision(req)
    const hog = await fetch(`${st.endpoints[0]}/hog`).then(
      (r) => r.status,
      () => 'killed',
    )
    expect(hog).toBe('killed')
    expect((await prov.status('hog-1')).replicasReady).toBe(0)
    await prov.destroy('hog-1')
  })

  test('args: maxLogBytes moves a large log aside when the replica restarts', async () => {
    const p = createLocalProvisioner(common, params(root, owner, { maxLogBytes: 10 }))
    const st = await p.provision(request('log-1'))
    const log = join(root, 'deployments', 'log-1', 'logs', 'replica-0.log')
    expect(await readFile(log, 'utf8')).toContain('demo-service listening')
    process.kill((await readDemoInfo(st.endpoints[0]!)).pid, 'SIGKILL')
    while ((await p.status('log-1')).replicasReady > 0) await new Promise((r) => setTimeout(r, 50))
    await p.restart('log-1')
    expect(await readFile(`${log}.1`, 'utf8')).toContain('demo-service listening')
    expect((await readFile(log, 'utf8')).match(/starting replica 0/g)).toHaveLength(1)
    await p.destroy('log-1')
  })

  test('args: cgroups off runs without limits', async () => {
    const p = createLocalProvisioner(common, params(root, owner, { cgroups: 'off' }))
    await p.provision(request('nocg-1'))
    const m = (await readManifest(join(root, 'deployments', 'nocg-1')))!
    expect(m.replicaRecords[0]!.cgroups).toEqual([])
    await p.destroy('nocg-1')
  })

  test('error: bad parameters are refused at construction', () => {
    expect(() => createLocalProvisioner(common, { rootDir: root, operatorId: 'has space' })).toThrow(/operatorId/)
    expect(() => createLocalProvisioner(common, { rootDir: root, operatorId: 'x', portRange: [5, 1] })).toThrow(/portRange/)
  })
})

describe('createLocalProvisioner: workload user', () => {
  const owner = `local-user-${run}`
  const nobody = (() => {
    try {
      return execFileSync('id', ['-u', 'nobody'], { encoding: 'utf8' }).trim() === '65534'
    } catch {
      return false
    }
  })()
  const canSwitch = process.getuid?.() === 0 && nobody

  /**
   * A replica that, as whatever user it runs as, tries to write what it must not (recording each outcome with the
   * error in $DATA_DIR/attempts), starts a grandchild that leaves its session, then becomes the demo service.
   */
  const intruder = `#!/bin/sh
r="$DATA_DIR/attempts"
: > "$r.tmp"
try() { if out=$( (eval "$2") 2>&1 ); then echo "$1=written"; else echo "$1=refused $out"; fi >> "$r.tmp"; }
root=$(cd "$DATA_DIR/../../.." && pwd)
try data 'touch "$DATA_DIR/mine"'
try bin 'echo x >> "$0"'
try manifest 'echo x >> "$DATA_DIR/../manifest.json"'
try depdir 'touch "$DATA_DIR/../intruder"'
try logs 'touch "$DATA_DIR/../logs/intruder"'
try state 'touch "$root/intruder"'
try cache 'touch "$root/cache/intruder"'
try other 'touch "$root/deployments/$OTHER/intruder"'
try other-manifest 'echo x >> "$root/deployments/$OTHER/manifest.json"'
try other-data 'touch "$root/deployments/$OTHER/data/intruder"'
for c in memory pids cpu; do
  p=$(sed -n "s/^[0-9]*:\\([^:]*,\\)*$c\\(,[^:]*\\)*:\\(.*\\)$/\\3/p" /proc/self/cgroup)
  [ -n "$p" ] || continue
  try "cg-parent-$c" "echo $$ > /sys/fs/cgroup/$c$p/../cgroup.procs"
  try "cg-root-$c" "echo $$ > /sys/fs/cgroup/$c/cgroup.procs"
done
mv "$r.tmp" "$r"
env -i setsid sh -c 'echo $$ > "$1.tmp" && mv "$1.tmp" "$1"; while :; do sleep 1; done' bpo-escapee "$DATA_DIR/escapee.pid" </dev/null >/dev/null 2>&1 &
exec node '${runnableDemoServicePath()}'
`

  test('behavior: a replica runs as the workload user, can write only its data dir and cannot leave its cgroups; destroy kills everything', async (ctx) => {
    if (!canSwitch) return ctx.skip('needs root and the user nobody (uid 65534)')
    const root = await newRoot()
    // the user must be able to reach its data dir: mkdtemp makes the root 0700
    await chmod(root, 0o755)
    const plain = createLocalProvisioner(common, params(root, owner))
    const prov = createLocalProvisioner(common, params(root, owner, { workloadUser: 'nobody' }))
    server.put('intruder', intruder)
    try {
      await plain.provision(request('uid-other'))
      const req = request('uid-1', 1, 'intruder')
      req.env = { OTHER: 'uid-other' }
      const st = await prov.provision(req)
      expect(st.replicasReady).toBe(1)
      const dir = join(root, 'deployments', 'uid-1')
      const rec = (await readManifest(dir))!.replicaRecords[0]!
      const { pid } = await readDemoInfo(st.endpoints[0]!)
      expect(pid).toBe(rec.pid)
      const status = await readFile(`/proc/${pid}/status`, 'utf8')
      expect(status).toMatch(/^Uid:\s+65534\s+65534\s+65534\s+65534$/m)
      expect(status).toMatch(/^Gid:\s+65534\s+65534\s+65534\s+65534$/m)
      expect(status).toMatch(/^NoNewPrivs:\s+1$/m)
      const attempts = Object.fromEntries(
        (await readFile(join(dir, 'data', 'attempts'), 'utf8'))
          .trim()
          .split('\n')
          .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
      )
      expect(attempts.data).toBe('written')
      for (const k of ['bin', 'manifest', 'depdir', 'logs', 'state', 'cache', 'other', 'other-manifest', 'other-data']) {
        expect(attempts[k], k).toMatch(/^refused .*Permission denied/)
      }
      // the artifact copy and the manifests are unchanged, root's and not writable by the user
      const bin = join(dir, 'bin', server.sha256('intruder'))
      expect(createHash('sha256').update(await readFile(bin)).digest('hex')).toBe(server.sha256('intruder'))
      expect(await stat(bin)).toMatchObject({ uid: 0, mode: 0o100550 })
      expect((await readManifest(dir))!.deploymentId).toBe('uid-1')
      expect((await readManifest(join(root, 'deployments', 'uid-other')))!.deploymentId).toBe('uid-other')
      expect(await stat(join(dir, 'data'))).toMatchObject({ uid: 65534, gid: 65534 })
      for (const f of ['manifest.json', 'logs', 'bin']) expect((await stat(join(dir, f))).uid, f).toBe(0)
      const cg = await detectCgroups({ mode: 'auto', owner })
      if (cg.mode !== 'none') {
        // joined before the drop, and still there: writing its pid to the parent's or the root's cgroup.procs failed
        expect(rec.cgroups!.length).toBeGreaterThan(0)
        for (const procs of rec.cgroups!) expect((await readFile(procs, 'utf8')).split('\n')).toContain(String(pid))
        const tried = Object.keys(attempts).filter((k) => k.startsWith('cg-'))
        expect(tried.length).toBeGreaterThan(0)
        for (const k of tried) expect(attempts[k], k).toMatch(/^refused .*(Permission denied|Operation not permitted)/)
        const own = await readFile(`/proc/${pid}/cgroup`, 'utf8')
        const inReplicaGroup = own.split('\n').filter((l) => l.endsWith(`/blueprint-operator/op-${owner}/uid-1/0`))
        expect(inReplicaGroup.length).toBe(cg.mode === 'v1' ? rec.cgroups!.length : 1) // one line per v1 hierarchy joined (memory, cpu, pids, a separate cpuacct)
        // no cgroup file the user could reach is writable by it
        for (const procs of rec.cgroups!) {
          for (const f of [procs, join(procs, '..', '..', 'cgroup.procs'), join(procs, '..', 'tasks')]) {
            const s = await stat(f).catch(() => undefined)
            if (s) expect(s.uid === 0 && (s.mode & 0o022) === 0, f).toBe(true)
          }
        }
      }
      const escapee = Number((await readFile(join(dir, 'data', 'escapee.pid'), 'utf8')).trim())
      expect(await readFile(`/proc/${escapee}/status`, 'utf8')).toMatch(/^Uid:\s+65534\s/m)
      await prov.destroy('uid-1')
      const gone = async (p: number) => {
        const s = await readProcStat(p)
        return !s || s.state === 'Z' || s.state === 'X'
      }
      expect(await gone(pid)).toBe(true)
      expect(await gone(escapee)).toBe(true)
      expect(existsSync(dir)).toBe(false)
      expect((await prov.listOwned()).filter((r) => r.deploymentId === 'uid-1')).toEqual([])
      // the other deployment is untouched
      expect((await plain.status('uid-other')).replicasReady).toBe(1)
    } finally {
      await prov.destroy('uid-1').catch(() => undefined)
      await plain.destroy('uid-other')
      await prov.close()
      await plain.close()
    }
  })

  test('behavior: data a replica wrote as the daemon\'s user is handed over (links not followed); without cgroups setpriv alone drops privileges, also on restart', async (ctx) => {
    if (!canSwitch) return ctx.skip('needs root and the user nobody (uid 65534)')
    const root = await newRoot()
    await chmod(root, 0o755)
    const plain = createLocalProvisioner(common, params(root, owner, { cgroups: 'off' }))
    const prov = createLocalProvisioner(common, params(root, owner, { workloadUser: 'nobody', cgroups: 'off' }))
    const data = join(root, 'deployments', 'uid-3', 'data')
    const outside = join(root, 'outside')
    try {
      await plain.provision(request('uid-3'))
      await plain.scale('uid-3', 0)
      await writeFile(outside, 'root only')
      await mkdir(join(data, 'sub'))
      await writeFile(join(data, 'sub', 'old'), 'from root')
      await symlink(outside, join(data, 'sub', 'link'))
      const st = await prov.provision(request('uid-3'))
      expect(st.replicasReady).toBe(1)
      const first = await readDemoInfo(st.endpoints[0]!)
      expect(first.starts).toBe(2)
      expect(await readFile(`/proc/${first.pid}/status`, 'utf8')).toMatch(/^Uid:\s+65534\s+65534\s+65534\s+65534$/m)
      expect((await readManifest(join(root, 'deployments', 'uid-3')))!.replicaRecords[0]!.cgroups).toEqual([])
      for (const f of ['', 'sub', 'sub/old', 'starts.count']) expect((await lstat(join(data, f))).uid, f).toBe(65534)
      expect((await lstat(join(data, 'sub', 'link'))).uid).toBe(65534)
      expect((await stat(outside)).uid).toBe(0)
      process.kill(first.pid, 'SIGKILL')
      while ((await prov.status('uid-3')).replicasReady > 0) await new Promise((r) => setTimeout(r, 50))
      const again = await prov.restart('uid-3')
      const second = await readDemoInfo(again.endpoints[0]!)
      expect(second.pid).not.toBe(first.pid)
      expect(second.starts).toBe(3)
      expect(await readFile(`/proc/${second.pid}/status`, 'utf8')).toMatch(/^Uid:\s+65534\s/m)
    } finally {
      await prov.destroy('uid-3')
      await prov.close()
      await plain.close()
    }
    expect(await leftovers()).toEqual([])
  })

  test('error: a root dir the workload user cannot traverse is refused before any replica starts', async (ctx) => {
    if (!canSwitch) return ctx.skip('needs root and the user nobody (uid 65534)')
    const root = await newRoot()
    const prov = createLocalProvisioner(common, params(root, owner, { workloadUser: 'nobody' }))
    await expect(prov.provision(request('uid-2'))).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringMatching(/cannot reach/) })
    expect(await leftovers()).toEqual([])
    await prov.destroy('uid-2')
    await prov.close()
  })

  test('error: a workload user that does not exist, is privileged or malformed is refused at construction', async () => {
    const root = await newRoot()
    const make = (workloadUser: string) => () => createLocalProvisioner(common, params(root, owner, { workloadUser }))
    expect(make('Root;x')).toThrow(/expected a POSIX user name/)
    if (process.getuid?.() !== 0) {
      expect(make('nobody')).toThrow(/needs the daemon to run as root/)
      return
    }
    expect(make('bpo-no-such-user')).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.stringMatching(/no user bpo-no-such-user/) }))
    expect(make('root')).toThrow(/privileged/)
  })

  test('error: a daemon that is not root cannot switch to a workload user and is refused at construction', async (ctx) => {
    if (!canSwitch) return ctx.skip('needs root and the user nobody (uid 65534) to run a daemon that is not root')
    // bundled into one file under /tmp that nobody can read, wherever the checkout lies (a clone under a 0700 folder)
    const { build } = await import('esbuild')
    const dir = await mkdtemp(join('/tmp', 'bpo-notroot-'))
    await chmod(dir, 0o755)
    const bundle = join(dir, 'local.mjs')
    await build({
      entryPoints: [fileURLToPath(new URL('./createLocalProvisioner.ts', import.meta.url))],
      bundle: true,
      platform: 'node',
      format: 'esm',
      outfile: bundle,
      logLevel: 'silent',
      banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
    })
    await chmod(bundle, 0o644)
    const script = `import(${JSON.stringify(bundle)}).then((m) => {
  try { m.createLocalProvisioner({ logger: {}, metrics: {} }, { rootDir: '/nonexistent', operatorId: 'o', workloadUser: 'nobody' }); console.log('CREATED') }
  catch (e) { console.log('REFUSED', e.code, e.message) }
})`
    const out = execFileSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--', process.execPath, '--input-type=module', '-e', script], {
      cwd: '/',
      encoding: 'utf8',
      timeout: 60_000,
    })
    await rm(dir, { recursive: true, force: true })
    expect(out).toMatch(/^REFUSED CONFIG_INVALID workloadUser nobody needs the daemon to run as root \(it runs as uid 65534\)$/m)
  })
})
