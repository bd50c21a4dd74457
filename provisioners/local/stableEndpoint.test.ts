import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises'
import { get } from 'node:http'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { createTestCommon } from '../../core/common.js'
import { startArtifactServer, type TestArtifactServer } from '../../test/helpers/artifact-server.js'
import { demoServiceArtifact, type DemoServiceInfo } from '../../test/helpers/demo-service.js'
import { resourceSpec } from '../../test/helpers/spec.js'
import type { DeploymentRequest, Provisioner } from '../types.js'
import { createLocalProvisioner } from './createLocalProvisioner.js'
import { scanMarkedProcesses } from './proc.js'

const { common, shutdown } = createTestCommon()
const owner = `stable-${Math.random().toString(36).slice(2, 8)}`
let server: TestArtifactServer
let root: string
const made: Provisioner[] = []

function request(deploymentId: string, replicas: number): DeploymentRequest {
  return {
    deploymentId,
    serviceId: '7',
    blueprintId: '3',
    source: { kind: 'testing', url: server.urlOf('demo'), sha256: server.sha256('demo') },
    spec: resourceSpec({ vcpu: 0.5, memoryGiB: 0.25, storageGiB: 1, replicas }),
    healthPath: '/healthz',
  }
}

function provisioner(): Provisioner {
  const p = createLocalProvisioner(common, { rootDir: root, operatorId: owner, portRange: [24100, 24199], healthTimeoutMs: 45_000, stopGraceMs: 5_000, artifactAllowHosts: ['127.0.0.1'] })
  made.push(p)
  return p
}

/** GET / on a fresh connection (no keep-alive: the balancer picks a backend per connection). */
function info(endpoint: string): Promise<DemoServiceInfo> {
  return new Promise((resolve, reject) => {
    const req = get(`${endpoint}/`, { agent: false, timeout: 5_000 }, (res) => {
      let body = ''
      res.on('data', (d) => (body += d))
      res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(body) as DemoServiceInfo) : reject(new Error(`HTTP ${res.statusCode}`))))
    })
    req.on('error', reject)
    req.on('timeout', () => req.destroy(new Error('timeout')))
  })
}

/** True when something listens on the port (a bind fails). */
async function bound(port: number): Promise<boolean> {
  const s = createServer()
  return new Promise((resolve) => {
    s.once('error', () => resolve(true))
    s.listen({ host: '127.0.0.1', port, exclusive: true }, () => s.close(() => resolve(false)))
  })
}

beforeAll(async () => {
  server = await startArtifactServer({ demo: demoServiceArtifact() })
  root = await mkdtemp(join(tmpdir(), 'bpo-stable-'))
})

afterAll(async () => {
  for (const p of made) await p.close().catch(() => undefined)
  for (const f of await scanMarkedProcesses({ ownerKey: 'BPO_OWNER', owner, deploymentKey: 'BPO_DEPLOYMENT' })) process.kill(f.pid, 'SIGKILL')
  await server?.stop()
  await rm(root, { recursive: true, force: true })
  await shutdown()
})

describe('local target: stable endpoint', () => {
  test('behavior: one endpoint across scale-up, a killed replica, restart, zero and back, a new daemon; released at destroy', async () => {
    const p = provisioner()
    const st = await p.provision(request('st-1', 1))
    expect(st.endpoints).toHaveLength(1)
    const endpoint = st.endpoints[0]!
    const port = Number(new URL(endpoint).port)
    expect(port).toBeGreaterThanOrEqual(24100)
    expect(port).toBeLessThanOrEqual(24199)
    expect(st.replicaEndpoints).toHaveLength(1)
    expect(st.replicaEndpoints).not.toContain(endpoint)
    expect((await info(endpoint)).deployment).toBe('st-1')

    // scale-up: the same endpoint, now balancing over three replicas
    const up = await p.scale('st-1', 3)
    expect(up.endpoints).toEqual([endpoint])
    expect(up.replicaEndpoints).toHaveLength(3)
    const seen = new Set<number>()
    for (let i = 0; i < 9; i++) seen.add((await info(endpoint)).pid)
    expect(seen.size).toBe(3)

    // a killed replica: connections fail over at once, before any status call notices
    const victim = [...seen][0]!
    process.kill(victim, 'SIGKILL')
    await new Promise((r) => setTimeout(r, 200))
    for (let i = 0; i < 6; i++) expect((await info(endpoint)).pid).not.toBe(victim)
    const restarted = await p.restart('st-1')
    expect(restarted.endpoints).toEqual([endpoint])
    expect(restarted.replicasReady).toBe(3)
    const after = new Set<number>()
    for (let i = 0; i < 9; i++) after.add((await info(endpoint)).pid)
    expect(after.size).toBe(3)

    // zero: no endpoint reported, the port stays ours and closes connections at once
    const zero = await p.scale('st-1', 0)
    expect(zero.endpoints).toEqual([])
    expect(await bound(port)).toBe(true)
    await expect(info(endpoint)).rejects.toThrow()
    const back = await p.scale('st-1', 1)
    expect(back.endpoints).toEqual([endpoint])
    expect((await info(endpoint)).deployment).toBe('st-1')

    // a restarted daemon (this one closed) listens on the recorded port again
    await p.close()
    expect(await bound(port)).toBe(false)
    const q = provisioner()
    expect((await q.status('st-1')).endpoints).toEqual([endpoint])
    expect((await info(endpoint)).deployment).toBe('st-1')
    expect((await q.listOwned()).filter((r) => r.kind === 'endpoint')).toEqual([{ deploymentId: 'st-1', kind: 'endpoint', id: `127.0.0.1:${port}` }])

    await q.destroy('st-1')
    expect(await bound(port)).toBe(false)
    expect((await q.listOwned()).filter((r) => r.deploymentId === 'st-1')).toEqual([])
    expect(await readdir(join(root, 'endpoints', `op-${owner}`))).toEqual([])
  })

  test('behavior: the port is chosen from the deployment id, the same in a fresh root; a port in use is skipped', async () => {
    const p = provisioner()
    const a = await p.provision(request('st-2', 0))
    const rec = JSON.parse(await readFile(join(root, 'endpoints', `op-${owner}`, 'st-2.json'), 'utf8')) as { port: number }
    await p.destroy('st-2')
    // the same id again: the same port (nothing else holds it)
    const again = await p.provision(request('st-2', 1))
    expect(again.endpoints).toEqual([`http://127.0.0.1:${rec.port}`])
    expect(a.endpoints).toEqual([])
    await p.destroy('st-2')
    // held by someone else: the next port
    const squatter = createServer()
    await new Promise<void>((r) => squatter.listen({ host: '127.0.0.1', port: rec.port }, () => r()))
    try {
      const moved = await p.provision(request('st-2', 1))
      expect(moved.endpoints).toHaveLength(1)
      expect(moved.endpoints[0]).not.toBe(`http://127.0.0.1:${rec.port}`)
      await p.destroy('st-2')
    } finally {
      await new Promise((r) => squatter.close(r))
    }
  })
})
