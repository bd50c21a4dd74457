/**
 * Shared setup of the Hetzner suites: the fake Hetzner Cloud API (test/fakes/hetzner-api.ts, whose servers are real
 * sshd hosts in their own network namespaces), the demo service, and provisioners built from a `[providers.hetzner]`
 * section exactly as the daemon would (endpoint pointed at the fake).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createTestCommon } from '../../core/common.js'
import { makeSecret } from '../../config/secrets.js'
import { createHetznerProvisioner, hetznerSectionSchema } from '../../provisioners/hetzner/index.js'
import type { CloudProvisioner } from '../../provisioners/cloud/createCloudProvisioner.js'
import type { DeploymentRequest } from '../../provisioners/types.js'
import { startArtifactServer, type TestArtifactServer } from '../helpers/artifact-server.js'
import { demoServiceArtifact } from '../helpers/demo-service.js'
import { generateKeyPair } from '../helpers/sshd.js'
import { resourceSpec } from '../helpers/spec.js'
import { startFakeHetzner, type FakeHetzner } from '../fakes/hetzner-api.js'

export const HETZNER_TOKEN = 'fake-hcloud-token-never-logged-0123456789'

export type HetznerLab = {
  fake: FakeHetzner
  artifacts: TestArtifactServer
  dir: string
  provisioner(o?: { operatorId?: string; dataDir?: string; endpoint?: string; token?: string }): CloudProvisioner
  request(deploymentId: string, o?: { replicas?: number; serverType?: string; location?: string }): DeploymentRequest
  stop(): Promise<void>
}

export async function startHetznerLab(): Promise<HetznerLab> {
  const fake = await startFakeHetzner({ token: HETZNER_TOKEN })
  const dir = await mkdtemp(join(tmpdir(), 'bpo-hetzner-lab-'))
  const login = await generateKeyPair()
  await writeFile(join(dir, 'login_key'), login.privateKey, { mode: 0o600 })
  const artifacts = await startArtifactServer({ 'demo-service': demoServiceArtifact() })
  const made: CloudProvisioner[] = []
  let seq = 0
  return {
    fake,
    artifacts,
    dir,
    provisioner(o = {}) {
      const { common } = createTestCommon()
      const section = hetznerSectionSchema.parse({
        token: 'env:BPO_TEST_HCLOUD_TOKEN',
        locations: ['fsn1'],
        endpoint: o.endpoint ?? fake.url,
        ssh_key: `file:${join(dir, 'login_key')}`,
        ssh_source_cidr: '10.0.0.0/8',
        boot_timeout_ms: 60_000,
        api_timeout_ms: 10_000,
      })
      const secrets: Record<string, string> = { 'env:BPO_TEST_HCLOUD_TOKEN': o.token ?? HETZNER_TOKEN, [`file:${join(dir, 'login_key')}`]: login.privateKey }
      const prov = createHetznerProvisioner(common, section, {
        operatorId: o.operatorId ?? 'op-test',
        dataDir: o.dataDir ?? join(dir, `data-${++seq}`),
        secret: (ref) => makeSecret(ref, secrets[ref]!),
        pollMs: 100,
        ssh: { artifactAllowHosts: ['127.0.0.1'], healthTimeoutMs: 30_000, connectTimeoutMs: 5_000 },
      })
      made.push(prov)
      return prov
    },
    request(deploymentId, o = {}) {
      return {
        deploymentId,
        serviceId: '7',
        blueprintId: '3',
        source: { kind: 'native', url: artifacts.urlOf('demo-service'), sha256: artifacts.sha256('demo-service') },
        spec: resourceSpec({ memoryGiB: 0.25, storageGiB: 1, replicas: o.replicas ?? 1 }),
        healthPath: '/healthz',
        offer: { provider: 'hetzner', region: o.location ?? 'fsn1', instanceType: o.serverType ?? 'cx22', spot: false, hourlyUsd: '0.0065' },
      }
    },
    async stop() {
      await Promise.all(made.map((x) => x.close().catch(() => undefined)))
      await fake.stop()
      await artifacts.stop()
      await rm(dir, { recursive: true, force: true })
    },
  }
}
