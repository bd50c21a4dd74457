import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { createTestCommon } from '../core/common.js'
import { freePort, generateKeyPair } from '../test/helpers/sshd.js'
import { resourceSpec } from '../test/helpers/spec.js'
import { assertEnvAllowed, envProblems } from './envPolicy.js'
import { createLocalProvisioner } from './local/createLocalProvisioner.js'
import { createSshProvisioner } from './ssh/createSshProvisioner.js'
import type { DeploymentRequest, Provisioner } from './types.js'

const { common, shutdown } = createTestCommon()
let dir: string
let targets: Provisioner[]
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bpo-envpolicy-'))
  const key = await generateKeyPair()
  const local = createLocalProvisioner(common, { rootDir: join(dir, 'local'), operatorId: 'op-env' })
  // a closed port: validation has to refuse before any connection is tried
  const ssh = createSshProvisioner(common, {
    operatorId: 'op-env',
    stateDir: join(dir, 'ssh'),
    connectTimeoutMs: 2_000,
    hosts: [{ name: 'h1', address: '127.0.0.1', port: await freePort(), user: 'root', privateKey: key.privateKey, hostKey: key.publicKey, capacity: { vcpu: 1, memoryGiB: 1, storageGiB: 1 }, hourlyUsd: '0.01' }],
  })
  targets = [local, ssh]
})
afterAll(async () => {
  for (const t of targets ?? []) await t.close()
  await rm(dir, { recursive: true, force: true })
  await shutdown()
})

const request = (env: Record<string, string>): DeploymentRequest => ({
  deploymentId: 'env-1',
  serviceId: '1',
  blueprintId: '1',
  source: { kind: 'native', url: 'http://example.invalid/x', sha256: 'a'.repeat(64) },
  spec: resourceSpec({ replicas: 1 }),
  env,
})

describe('envPolicy', () => {
  test('default: ordinary names pass', () => {
    expect(envProblems({ GREETING: 'hi', NODE_ENV: 'production', _X1: '' })).toEqual([])
    expect(() => assertEnvAllowed(undefined)).not.toThrow()
  })

  test('error: loader, shell start-up and target names are refused', () => {
    for (const k of ['LD_PRELOAD', 'LD_AUDIT', 'LD_LIBRARY_PATH', 'LD_DEBUG_OUTPUT', 'IFS', 'ENV', 'BASH_ENV', 'HOME', 'PATH', 'PORT', 'DATA_DIR', 'BPO_OWNER', 'BPO_ANYTHING']) {
      expect({ k, problems: envProblems({ [k]: 'x' }).length }).toEqual({ k, problems: 1 })
    }
    expect(envProblems({ 'a-b': 'x', OK: 'a\0b' })).toHaveLength(2)
    expect(() => assertEnvAllowed({ LD_PRELOAD: '/tmp/x.so' })).toThrow(expect.objectContaining({ code: 'ENV_REFUSED', reason: 'MALFORMED_REQUEST', retryable: false }))
  })

  test('error: LD_PRELOAD (and the rest of the list) is refused with the same code by the local and the SSH target', async () => {
    for (const env of [{ LD_PRELOAD: '/tmp/evil.so' }, { BASH_ENV: '/tmp/x' }, { HOME: '/root' }, { IFS: '/' }] as Record<string, string>[]) {
      const codes = await Promise.all(targets.map((t) => t.provision(request(env)).then(() => 'provisioned', (e: { code?: string; reason?: string }) => `${e.code}/${e.reason}`)))
      expect({ env, codes }).toEqual({ env, codes: ['ENV_REFUSED/MALFORMED_REQUEST', 'ENV_REFUSED/MALFORMED_REQUEST'] })
    }
  })
})
