/**
 * Shared setup of the EC2 suites: the fake EC2 API (test/fakes/ec2-api.ts, whose instances are real sshd hosts in
 * their own network namespaces), the demo service behind a test artifact server, and provisioner factories built
 * from a `[providers.aws]` section exactly as the daemon would (endpoint pointed at the fake).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createTestCommon } from '../../core/common.js'
import { makeSecret } from '../../config/secrets.js'
import { awsEc2SectionSchema, createAwsEc2Provisioner, type AwsEc2Provisioner } from '../../provisioners/aws-ec2/index.js'
import type { DeploymentRequest } from '../../provisioners/types.js'
import { startArtifactServer, type TestArtifactServer } from '../helpers/artifact-server.js'
import { demoServiceArtifact } from '../helpers/demo-service.js'
import { generateKeyPair } from '../helpers/sshd.js'
import { resourceSpec } from '../helpers/spec.js'
import { startFakeEc2, type FakeEc2 } from '../fakes/ec2-api.js'

export type Ec2Lab = {
  fake: FakeEc2
  artifacts: TestArtifactServer
  dir: string
  provisioner(o?: { operatorId?: string; dataDir?: string; endpoint?: string; accessKeyId?: string; maxInstances?: number }): AwsEc2Provisioner
  request(deploymentId: string, o?: { replicas?: number; spot?: boolean; instanceType?: string; region?: string }): DeploymentRequest
  stop(): Promise<void>
}

export async function startEc2Lab(o: { describeLagMs?: number } = {}): Promise<Ec2Lab> {
  const fake = await startFakeEc2({ accessKeyId: 'AKIAFAKEEXAMPLE00001', ...o })
  const dir = await mkdtemp(join(tmpdir(), 'bpo-ec2-lab-'))
  const login = await generateKeyPair()
  await writeFile(join(dir, 'login_key'), login.privateKey, { mode: 0o600 })
  const artifacts = await startArtifactServer({ 'demo-service': demoServiceArtifact() })
  const made: AwsEc2Provisioner[] = []
  let seq = 0
  return {
    fake,
    artifacts,
    dir,
    provisioner(o = {}) {
      const { common } = createTestCommon()
      const section = awsEc2SectionSchema.parse({
        access_key_id: 'env:BPO_TEST_AWS_KEY_ID',
        secret_access_key: 'env:BPO_TEST_AWS_SECRET',
        regions: ['us-east-1', 'eu-west-1'],
        endpoint: o.endpoint ?? fake.url,
        ssh_key: `file:${join(dir, 'login_key')}`,
        ssh_source_cidr: '10.0.0.0/8',
        boot_timeout_ms: 60_000,
        api_timeout_ms: 10_000,
        ...(o.maxInstances ? { max_instances: o.maxInstances } : {}),
      })
      const secrets: Record<string, string> = {
        'env:BPO_TEST_AWS_KEY_ID': o.accessKeyId ?? 'AKIAFAKEEXAMPLE00001',
        'env:BPO_TEST_AWS_SECRET': 'fake-secret-access-key-never-logged',
        [`file:${join(dir, 'login_key')}`]: login.privateKey,
      }
      const prov = createAwsEc2Provisioner(common, section, {
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
        offer: { provider: 'aws', region: o.region ?? 'us-east-1', instanceType: o.instanceType ?? 't3.micro', spot: o.spot ?? false, hourlyUsd: '0.0104' },
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
