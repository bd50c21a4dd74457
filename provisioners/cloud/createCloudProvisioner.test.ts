/**
 * The shared cloud lifecycle's boot failures, over an in-memory CloudDriver whose VMs never come up (no SSH is ever
 * reached): a VM that stays pending past the boot deadline, and one the provider terminates while it boots.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { createTestCommon } from '../../core/common.js'
import { makeSecret, type Secret } from '../../config/secrets.js'
import { generateKeyPair } from '../../test/helpers/sshd.js'
import { resourceSpec } from '../../test/helpers/spec.js'
import type { DeploymentRequest } from '../types.js'
import { createCloudProvisioner, type CloudProvisioner } from './createCloudProvisioner.js'
import type { CloudDriver, CloudVm } from './types.js'

const { common, shutdown } = createTestCommon()
let dir: string
let loginKey: Secret
const made: CloudProvisioner[] = []

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bpo-cloud-boot-'))
  loginKey = makeSecret('env:BPO_TEST_LOGIN', (await generateKeyPair()).privateKey)
})
afterAll(async () => {
  for (const p of made) await p.close()
  if (dir) await rm(dir, { recursive: true, force: true })
  await shutdown()
})

/**
 * An in-memory provider: createVm answers a pending VM; what the VM does next is `boot(vm)`, applied on every read.
 * It records what exists so a test can check that destroy leaves nothing.
 */
function memoryCloud(boot: (vm: CloudVm) => CloudVm) {
  const vms = new Map<string, CloudVm>()
  const firewalls = new Set<string>()
  let seq = 0
  const driver: CloudDriver = {
    provider: 'memory',
    zeroMode: 'stop',
    sshUser: 'root',
    remoteRoot: () => '/var/lib/blueprint-operator',
    async ensureFirewall(f) {
      firewalls.add(f.deploymentId)
      return `fw-${f.deploymentId}`
    },
    async deleteFirewalls(id) {
      firewalls.delete(id)
    },
    async findVms(id) {
      return [...vms.values()].filter((v) => v.deploymentId === id)
    },
    async createVm(v) {
      const vm: CloudVm = { id: `vm-${++seq}`, deploymentId: v.deploymentId, replica: v.replica, generation: v.generation, state: 'pending' }
      vms.set(vm.id, vm)
      return { ...vm }
    },
    async getVm(id) {
      const vm = vms.get(id)
      if (!vm) return undefined
      vms.set(id, boot(vm))
      return { ...vms.get(id)! }
    },
    async startVm() {},
    async stopVm() {},
    async deleteVm(vm) {
      vms.delete(vm.id)
    },
    async listOwned() {
      return []
    },
    async close() {},
  }
  return { driver, vms, firewalls }
}

function provisioner(driver: CloudDriver, o: { bootTimeoutMs: number }): CloudProvisioner {
  const p = createCloudProvisioner(common, { driver, operatorId: 'op-test', dataDir: join(dir, `data-${made.length}`), loginKey, sshSourceCidr: '10.0.0.0/8', pollMs: 10, ...o })
  made.push(p)
  return p
}

const request = (deploymentId: string): DeploymentRequest => ({
  deploymentId,
  serviceId: '7',
  blueprintId: '3',
  source: { kind: 'native', url: 'https://example.com/demo', sha256: 'a'.repeat(64) },
  spec: resourceSpec({ memoryGiB: 0.25, storageGiB: 1, replicas: 1 }),
  healthPath: '/healthz',
  offer: { provider: 'memory', region: 'r1', instanceType: 'small', spot: true, hourlyUsd: '0.01' },
})

describe('createCloudProvisioner: VMs that never come up', () => {
  test('error: a VM still pending at the boot deadline is CLOUD_BOOT_TIMEOUT (retryable); destroy leaves nothing', async () => {
    const cloud = memoryCloud((vm) => vm)
    const prov = provisioner(cloud.driver, { bootTimeoutMs: 200 })
    const err = await prov.provision(request('boot-1')).then(
      () => undefined,
      (e: unknown) => e as { code?: string; retryable?: boolean; message: string },
    )
    expect(err).toMatchObject({ code: 'CLOUD_BOOT_TIMEOUT', retryable: true })
    expect(err!.message).toContain('did not run within 200 ms')
    expect([...cloud.vms.values()].map((v) => v.state)).toEqual(['pending'])
    await prov.destroy('boot-1')
    expect(cloud.vms.size).toBe(0)
    expect(cloud.firewalls.size).toBe(0)
  })

  test('error: a VM the provider terminates while it boots (spot interruption) is CLOUD_VM_LOST (retryable)', async () => {
    const cloud = memoryCloud((vm) => ({ ...vm, state: 'terminated', interrupted: true }))
    // a long deadline: the loss is seen on the first read, never the timeout
    const prov = provisioner(cloud.driver, { bootTimeoutMs: 600_000 })
    const err = await prov.provision(request('lost-1')).then(
      () => undefined,
      (e: unknown) => e as { code?: string; retryable?: boolean; message: string },
    )
    expect(err).toMatchObject({ code: 'CLOUD_VM_LOST', retryable: true })
    expect(err!.message).toContain('terminated while booting (spot interruption)')
    const st = await prov.status('lost-1')
    expect(st).toMatchObject({ exists: false, replicasWanted: 1, detail: 'every VM was interrupted (spot)' })
    await prov.destroy('lost-1')
    expect(cloud.firewalls.size).toBe(0)
  })
})
