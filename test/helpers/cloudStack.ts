/**
 * The e2e stack with an AWS EC2 target: the fake EC2 of test/fakes/ (VMs are real sshd hosts in network namespaces),
 * the operator's VM login key, and a price catalog in which EC2 is cheaper than the local machine (0.05 USD/h).
 * The daemon is started by the caller (in process, or as a child with `startChild`).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { usd } from '../../core/money.js'
import type { Offer } from '../../core/offer.js'
import { writeCacheFile } from '../../pricing/catalog.js'
import { startFakeEc2, type FakeEc2 } from '../fakes/ec2-api.js'
import { generateKeyPair } from './sshd.js'
import { startStack, type Stack, type StackOptions } from './stack.js'

/** Fake VMs live in network namespaces: root only. */
export const canNetns = process.getuid?.() === 0

export const awsOffer = (instanceType: string, vcpu: number, memoryGiB: number, hourly: string): Offer => ({
  provider: 'aws',
  region: 'us-east-1',
  instanceType,
  vcpu,
  memoryGiB,
  gpu: { count: 0 },
  includedStorageGiB: 0,
  hourlyUsd: usd(hourly),
  storageUsdPerGiBMonth: usd('0.08'),
  source: 'skypilot-aws',
  fetchedAt: Date.now(),
})

export type CloudStack = { stack: Stack; fake: FakeEc2; liveOf(deploymentId: string): FakeEc2['instances'] extends Map<string, infer I> ? I[] : never; stop(): Promise<void> }

export async function startCloudStack(o: { offers: Offer[]; stack?: StackOptions; placement?: Record<string, unknown> }): Promise<CloudStack> {
  const fake = await startFakeEc2({ accessKeyId: 'AKIAFAKEEXAMPLE00001' })
  const dir = mkdtempSync(join(tmpdir(), 'bpo-cloud-e2e-'))
  const login = await generateKeyPair(dir)
  writeFileSync(join(dir, 'login_key'), login.privateKey, { mode: 0o600 })
  // by reference, as an operator gives them; a child daemon inherits them
  process.env.BPO_TEST_AWS_KEY_ID = 'AKIAFAKEEXAMPLE00001'
  process.env.BPO_TEST_AWS_SECRET = 'fake-secret-access-key-never-logged'
  const cache = join(dir, 'pricing')
  await writeCacheFile(cache, 'skypilot-aws', Date.now(), o.offers)
  const stack = await startStack({ loopMs: 500, attempts: 1, ...o.stack })
  const local = (stack.doc.providers as Record<string, unknown>).local as Record<string, unknown>
  local.hourly_usd = '0.05'
  stack.doc.providers = {
    ...(stack.doc.providers as object),
    aws: {
      access_key_id: 'env:BPO_TEST_AWS_KEY_ID',
      secret_access_key: 'env:BPO_TEST_AWS_SECRET',
      regions: ['us-east-1'],
      endpoint: fake.url,
      ssh_key: `file:${join(dir, 'login_key')}`,
      ssh_source_cidr: '10.0.0.0/8',
      // generous: a loaded 2-core machine boots the fake VMs' sshd slowly
      boot_timeout_ms: 240_000,
      api_timeout_ms: 10_000,
    },
  }
  stack.doc.pricing = { sources: ['skypilot-aws'], cache_dir: cache }
  if (o.placement) stack.doc.placement = o.placement
  return {
    stack,
    fake,
    liveOf: (dep) => fake.live().filter((i) => i.tags['bpo-deployment'] === dep) as never,
    async stop() {
      await stack.stop()
      await fake.stop()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
