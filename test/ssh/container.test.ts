/**
 * Container sources on SSH hosts, live: podman (runc) on this machine behind sshd, a real local OCI registry, the
 * image pulled and run by digest. Skipped with the reason when podman or the registry is not installed.
 */
import { writeFile } from 'node:fs/promises'
import { sshdMissing } from '../helpers/sshd.js'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import type { DeploymentRequest } from '../../provisioners/types.js'
import { runProvisionerContract } from '../provisioner-contract/suite.js'
import { registryUnavailable, startLocalRegistry, type LocalRegistry } from '../helpers/registry.js'
import { freePort } from '../helpers/sshd.js'
import { spec, startSshLab, type SshLab } from './harness.js'

const missing = sshdMissing() ?? registryUnavailable()

function containerRequest(reg: LocalRegistry, deploymentId: string, o: { replicas?: number; digest?: string; placement?: string } = {}): DeploymentRequest {
  return {
    deploymentId,
    serviceId: '11',
    blueprintId: '5',
    source: { kind: 'container', image: reg.image, digest: o.digest ?? reg.digest },
    spec: spec({ vcpu: 0.5, memoryGiB: 0.125, replicas: o.replicas ?? 1, ports: [8080] }),
    healthPath: '/healthz',
    ...(o.placement ? { placement: o.placement } : {}),
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

describe.skipIf(!!missing)('ssh target, container sources (podman + local registry)', () => {
  let reg: LocalRegistry
  let lab: SshLab

  beforeAll(async () => {
    reg = await startLocalRegistry()
    // h1 is cheaper but its podman cannot start (broken config): never chosen for containers
    const broken = join(reg.env.CONTAINERS_CONF!.replace(/containers\.conf$/, ''), 'broken.conf')
    await writeFile(broken, 'this is [ not toml\n')
    lab = await startSshLab({ hosts: 2, costs: ['0.01', '0.09'], sshdEnv: [{ ...reg.env, CONTAINERS_CONF: broken }, reg.env] })
  })
  afterAll(async () => {
    await lab?.stop()
    await reg?.stop()
  })

  test('behavior: a host without a working runtime is never chosen; the image runs by digest with limits, labels and a kept data volume', async () => {
    const prov = lab.provisioner({ stopGraceSeconds: 2 })
    try {
      const st = await prov.provision(containerRequest(reg, 'ctr-a'))
      expect(st.placement).toBe('h2')
      expect(st.replicasReady).toBe(1)
      const endpoint = st.endpoints[0]!
      expect(await get(`${endpoint}/starts`)).toEqual({ ok: true, text: '1' })

      const name = (await prov.listOwned()).find((r) => r.deploymentId === 'ctr-a' && r.kind === 'container')!.id
      const inspect = JSON.parse((await reg.podman(['inspect', name])).stdout)[0]
      expect(inspect.ImageName).toBe(`${reg.image}@${reg.digest}`)
      expect(inspect.HostConfig.Memory).toBe(0.125 * 1024 ** 3)
      expect(inspect.HostConfig.NanoCpus).toBe(500_000_000)
      expect(inspect.Config.Labels).toMatchObject({ 'io.blueprint-operator.owner': 'op-test', 'io.blueprint-operator.deployment': 'ctr-a', 'io.blueprint-operator.replica': '0' })
      expect(inspect.Config.Env).toEqual(expect.arrayContaining(['DEPLOYMENT_ID=ctr-a', 'REPLICA_INDEX=0', 'DATA_DIR=/data', 'BPO_OWNER=op-test', 'PORT=8080']))

      // the same host still takes native sources, the cheaper h1 gets them
      const native = await prov.provision(lab.request('ctr-native'))
      expect(native.placement).toBe('h1')

      const zero = await prov.scale('ctr-a', 0)
      expect({ wanted: zero.replicasWanted, ready: zero.replicasReady, exists: zero.exists }).toEqual({ wanted: 0, ready: 0, exists: true })
      expect((await reg.podman(['ps', '-a', '--format', '{{.Names}}'])).stdout).not.toContain(name)
      const back = await prov.scale('ctr-a', 1)
      expect(await get(`${back.endpoints[0]}/starts`)).toEqual({ ok: true, text: '2' })

      const pinned = await prov.provision(containerRequest(reg, 'ctr-pinned', { placement: 'h1' })).catch((e: { reason?: string }) => e)
      expect((pinned as { reason?: string }).reason).toBe('NO_FEASIBLE_OFFER')
    } finally {
      for (const id of ['ctr-a', 'ctr-native', 'ctr-pinned']) await prov.destroy(id).catch(() => undefined)
    }
    expect((await reg.podman(['ps', '-a', '--filter', 'label=io.blueprint-operator.owner=op-test', '--format', '{{.Names}}'])).stdout.trim()).toBe('')
  })

  test('error: a digest the registry does not have is refused (not retryable) and nothing runs', async () => {
    const prov = lab.provisioner({ stopGraceSeconds: 2 })
    try {
      const err = (await prov.provision(containerRequest(reg, 'ctr-bad', { digest: `sha256:${'a'.repeat(64)}` })).catch((e: unknown) => e)) as { reason?: string; retryable?: boolean }
      expect({ reason: err.reason, retryable: err.retryable }).toEqual({ reason: 'ARTIFACT_DIGEST_MISMATCH', retryable: false })
      expect((await prov.listOwned()).filter((r) => r.kind === 'container')).toEqual([])
    } finally {
      await prov.destroy('ctr-bad')
    }
  })
})

if (!missing) {
  let reg: LocalRegistry | undefined
  runProvisionerContract('ssh (container sources)', async () => {
    reg = await startLocalRegistry()
    const r = reg
    const lab = await startSshLab({ hosts: 2, sshdEnv: r.env })
    const stateDir = join(lab.dir, 'state-main')
    const provisioner = lab.provisioner({ stateDir, stopGraceSeconds: 2 })
    return {
      provisioner,
      otherOperator: lab.provisioner({ operatorId: 'op-other', stopGraceSeconds: 2 }),
      reopen: async () => lab.provisioner({ stateDir, stopGraceSeconds: 2 }),
      makeRequest: (id, o) => containerRequest(r, id, { replicas: o?.replicas ?? 1 }),
      probe: async (endpoint) => (await get(`${endpoint}/healthz`)).ok,
      // a data dir per replica bind-mounted at /data: the image counts its starts there (GET /starts)
      supportsDataKeep: true,
      readStarts: async (endpoint) => Number((await get(`${endpoint}/starts`)).text),
      reportsUsage: true,
      unreachable: async () => lab.provisioner({ hosts: [{ ...lab.hosts[0]!, port: await freePort() }], connectTimeoutMs: 5_000 }),
      async teardown() {
        await lab.stop()
        await r.stop()
      },
    }
  })
} else {
  describe('ssh target, container sources', () => {
    test.skip(`live container tests: ${missing}`, () => undefined)
  })
}
