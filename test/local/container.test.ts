/**
 * Container sources on the local target, live: podman on this machine (runc, explicit ulimits where the defaults are
 * refused, found by the start-up check), a real OCI registry on 127.0.0.1, the image pulled and run by digest.
 * Skipped with the reason when podman or the registry is not installed.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { createTestCommon } from '../../core/common.js'
import { createLocalProvisioner } from '../../provisioners/local/createLocalProvisioner.js'
import type { LocalProvisioner } from '../../provisioners/local/withContainers.js'
import type { DeploymentRequest } from '../../provisioners/types.js'
import { registryUnavailable, startLocalRegistry, type LocalRegistry } from '../helpers/registry.js'
import { resourceSpec } from '../helpers/spec.js'
import { runProvisionerContract } from '../provisioner-contract/suite.js'

const missing = registryUnavailable()
const { common } = createTestCommon()
const run = Math.random().toString(36).slice(2, 8)

function containerRequest(reg: LocalRegistry, deploymentId: string, o: { replicas?: number; digest?: string; image?: string } = {}): DeploymentRequest {
  return {
    deploymentId,
    serviceId: '11',
    blueprintId: '5',
    source: { kind: 'container', image: o.image ?? reg.image, digest: o.digest ?? reg.digest },
    spec: resourceSpec({ vcpu: 0.5, memoryGiB: 0.125, storageGiB: 1, replicas: o.replicas ?? 1, ports: [8080] }),
    env: { GREETING: 'hello' },
    healthPath: '/healthz',
  }
}

async function get(url: string): Promise<{ ok: boolean; text: string }> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(5_000) })
    return { ok: res.ok, text: (await res.text()).trim() }
  } catch {
    return { ok: false, text: '' }
  }
}

/** podman with the registry helper's storage and registry settings, nothing else of this process. */
const podmanOf = (reg: LocalRegistry) => ({ env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', ...reg.env } })

describe.skipIf(!!missing)('local target, container sources (podman + local registry)', () => {
  let reg: LocalRegistry
  let root: string
  let prov: LocalProvisioner
  const owner = `ctr-${run}`
  const portLo = 33000 + Math.floor(Math.random() * 50) * 100
  const portRange: [number, number] = [portLo, portLo + 99]

  beforeAll(async () => {
    reg = await startLocalRegistry()
    root = await mkdtemp(join(tmpdir(), 'bpo-local-ctr-'))
    prov = createLocalProvisioner(common, { rootDir: root, operatorId: owner, portRange, stopGraceMs: 2_000, podman: podmanOf(reg) })
  })
  afterAll(async () => {
    await prov?.close()
    await reg?.stop()
    if (root) await rm(root, { recursive: true, force: true })
  })

  test('default: podman is detected by running a container; container joins sourceKinds', async () => {
    const caps = await prov.detect()
    expect(caps.container).toMatchObject({ ok: true })
    expect(prov.sourceKinds).toContain('container')
  })

  test('behavior: runs by digest with limits, labels, a clean env, only the data volume; data kept across zero; destroy leaves nothing', async () => {
    const id = `c-${run}-a`
    try {
      const st = await prov.provision(containerRequest(reg, id))
      expect({ ready: st.replicasReady, healthy: st.healthy }).toEqual({ ready: 1, healthy: true })
      const endpoint = st.endpoints[0]!
      // published on the local address, on a port of the operator's range
      expect(endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
      const port = Number(new URL(endpoint).port)
      expect(port >= portRange[0] && port <= portRange[1], `${port} in ${portRange.join('-')}`).toBe(true)
      expect(await get(`${endpoint}/starts`)).toEqual({ ok: true, text: '1' })

      const owned = await prov.listOwned()
      const name = owned.find((r) => r.deploymentId === id && r.kind === 'container')!.id
      expect(owned.filter((r) => r.deploymentId === id).map((r) => r.kind).sort()).toEqual(['container', 'container-manifest', 'endpoint', 'volume']) // the stable endpoint's record too
      const inspect = JSON.parse((await reg.podman(['inspect', name])).stdout)[0]
      expect(inspect.ImageName).toBe(`${reg.image}@${reg.digest}`)
      expect(inspect.HostConfig.Memory).toBe(0.125 * 1024 ** 3)
      expect(inspect.HostConfig.NanoCpus).toBe(500_000_000)
      expect(inspect.Config.Labels).toMatchObject({ 'io.blueprint-operator.owner': owner, 'io.blueprint-operator.deployment': id, 'io.blueprint-operator.replica': '0' })
      // exactly the explicit environment (plus the image's own PATH and what podman always sets)
      const env = (inspect.Config.Env as string[]).map((e) => e.slice(0, e.indexOf('='))).sort()
      expect(env.filter((k) => !['PATH', 'TERM', 'HOSTNAME', 'container', 'HOME'].includes(k))).toEqual(
        ['BLUEPRINT_ID', 'DATA_DIR', 'DEPLOYMENT_ID', 'GREETING', 'HOST', 'PORT', 'REPLICA_INDEX', 'SERVICE_ID'].sort(),
      )
      // the only mount is the data volume: no host directory, nothing of the daemon's
      expect((inspect.Mounts as { Type: string; Destination: string }[]).map((m) => `${m.Type}:${m.Destination}`)).toEqual(['volume:/data'])
      // (that the daemon's own environment, TOML, key file and state stay out: test/e2e/local-container-lifecycle.test.ts)

      const zero = await prov.scale(id, 0)
      expect({ wanted: zero.replicasWanted, ready: zero.replicasReady, exists: zero.exists, healthy: zero.healthy }).toEqual({ wanted: 0, ready: 0, exists: true, healthy: true })
      expect((await reg.podman(['ps', '-a', '--format', '{{.Names}}'])).stdout).not.toContain(name)
      expect((await prov.listOwned()).filter((r) => r.deploymentId === id).map((r) => r.kind).sort()).toEqual(['container-manifest', 'endpoint', 'volume']) // at zero the endpoint's port stays reserved
      const back = await prov.scale(id, 1)
      expect(back.endpoints).toEqual([endpoint]) // the same port again
      expect(await get(`${back.endpoints[0]}/starts`)).toEqual({ ok: true, text: '2' })

      // a second provisioner instance (a restarted daemon) adopts it
      const fresh = createLocalProvisioner(common, { rootDir: root, operatorId: owner, stopGraceMs: 2_000, podman: podmanOf(reg) })
      expect((await fresh.status(id)).endpoints).toEqual([endpoint])
      await fresh.close()
    } finally {
      await prov.destroy(id)
    }
    expect((await prov.listOwned()).filter((r) => r.deploymentId === id)).toEqual([])
    expect((await reg.podman(['volume', 'ls', '--format', '{{.Name}}'])).stdout).not.toContain(id)
    expect((await prov.status(id)).exists).toBe(false)
  })

  test('error: a digest the registry does not have is refused (ARTIFACT_DIGEST_MISMATCH, not retryable) and nothing is left', async () => {
    const id = `c-${run}-bad`
    const err = (await prov.provision(containerRequest(reg, id, { digest: `sha256:${'a'.repeat(64)}` })).catch((e: unknown) => e)) as { code?: string; reason?: string; retryable?: boolean }
    expect({ code: err.code, reason: err.reason, retryable: err.retryable }).toEqual({ code: 'ARTIFACT_DIGEST_MISMATCH', reason: 'ARTIFACT_DIGEST_MISMATCH', retryable: false })
    expect((await prov.listOwned()).filter((r) => r.deploymentId === id)).toEqual([])
  })

  test('error: a container podman refuses to start (a memory limit below its minimum) is CONTAINER_RUNTIME_FAILED with podman\'s words', async () => {
    const id = `c-${run}-tiny`
    const req = containerRequest(reg, id)
    // 1 MiB: a valid spec, but below the smallest memory limit podman accepts
    req.spec = { ...req.spec, memoryGiB: 1 / 1024 }
    try {
      const err = (await prov.provision(req).catch((e: unknown) => e)) as { code?: string; retryable?: boolean; message?: string; details?: string[] }
      expect({ code: err.code, retryable: err.retryable }).toEqual({ code: 'CONTAINER_RUNTIME_FAILED', retryable: true })
      expect(err.message).toMatch(/replica 0 of .* could not be started/)
      expect(String(err.details)).toMatch(/memory/i)
    } finally {
      await prov.destroy(id)
    }
    expect((await prov.listOwned()).filter((r) => r.deploymentId === id)).toEqual([])
  })

  test('error: a tag is refused before anything runs (MALFORMED_REQUEST)', async () => {
    const id = `c-${run}-tag`
    const err = (await prov.provision(containerRequest(reg, id, { image: `${reg.image}:v1` })).catch((e: unknown) => e)) as { reason?: string; details?: string[] }
    expect(err.reason).toBe('MALFORMED_REQUEST')
    expect(String(err.details)).toMatch(/tags are refused/)
    expect((await prov.listOwned()).filter((r) => r.deploymentId === id)).toEqual([])
  })

  test('behavior: status reports CPU counters per replica, rising with work', async () => {
    const id = `c-${run}-cpu`
    try {
      const st = await prov.provision(containerRequest(reg, id))
      expect(st.usage?.replicas.map((r) => r.index)).toEqual([0])
      const before = st.usage!.replicas[0]!
      const name = (await prov.listOwned()).find((r) => r.deploymentId === id && r.kind === 'container')!.id
      // burn CPU inside the container for ~1 s
      await reg.podman(['exec', name, '/bin/busybox', 'sh', '-c', 'end=$(( $(/bin/busybox date +%s) + 2 )); while [ $(/bin/busybox date +%s) -lt $end ]; do :; done'])
      const after = (await prov.status(id)).usage!.replicas[0]!
      expect(after.id).toBe(before.id)
      expect(after.cpuSeconds - before.cpuSeconds).toBeGreaterThan(0.3)
    } finally {
      await prov.destroy(id)
    }
  })
})

describe.skipIf(!!missing)('local target, podman that cannot run containers', () => {
  test('behavior: container stays out of sourceKinds and the reason is given; native sources still work', async () => {
    const root = await mkdtemp(join(tmpdir(), 'bpo-local-ctr-'))
    const prov = createLocalProvisioner(common, { rootDir: root, operatorId: `ctr-broken-${run}`, podman: { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', CONTAINERS_CONF: join(root, 'nope.conf') }, binary: '/nonexistent/podman' } })
    try {
      const caps = await prov.detect()
      expect(caps.container).toEqual({ ok: false, reason: expect.stringMatching(/not installed/) })
      expect(prov.sourceKinds).toEqual(['native', 'testing'])
      expect(await readFile(join(root, 'nothing'), 'utf8').catch(() => 'absent')).toBe('absent')
    } finally {
      await prov.close()
      await rm(root, { recursive: true, force: true })
    }
  })
})

if (!missing) {
  runProvisionerContract('local (container sources)', async () => {
    const reg = await startLocalRegistry()
    const root = await mkdtemp(join(tmpdir(), 'bpo-local-ctr-'))
    const otherRoot = await mkdtemp(join(tmpdir(), 'bpo-local-ctr-'))
    const me = `ctr-contract-${run}`
    const params = { rootDir: root, operatorId: me, stopGraceMs: 2_000, podman: podmanOf(reg) }
    const provisioner = createLocalProvisioner(common, params)
    const otherOperator = createLocalProvisioner(common, { ...params, rootDir: otherRoot, operatorId: `ctr-other-${run}` })
    return {
      provisioner,
      otherOperator,
      reopen: async () => createLocalProvisioner(common, params),
      makeRequest: (id, o) => containerRequest(reg, id, { replicas: o?.replicas ?? 1 }),
      probe: async (endpoint) => (await get(`${endpoint}/healthz`)).ok,
      // a named volume per replica: the image counts its starts there (GET /starts)
      supportsDataKeep: true,
      readStarts: async (endpoint) => Number((await get(`${endpoint}/starts`)).text),
      reportsUsage: true,
      async teardown() {
        await provisioner.close()
        await otherOperator.close()
        await reg.stop()
        await rm(root, { recursive: true, force: true })
        await rm(otherRoot, { recursive: true, force: true })
      },
    }
  })
} else {
  describe('local target, container sources', () => {
    test.skip(`live container tests: ${missing}`, () => undefined)
  })
}
