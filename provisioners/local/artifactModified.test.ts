/**
 * ARTIFACT_MODIFIED: something running as the daemon's user rewrites the shared artifact cache right after the
 * target verified it and before it copies it for a spawn. The instant is made exact by wrapping `copyFile` (the
 * attacker writes just before each copy out of the cache); everything else is the real local target. Both attempts
 * see the cache changed, so the deployment fails with ARTIFACT_MODIFIED (retryable) and the rewritten bytes never run.
 */
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest'
import { createTestCommon } from '../../core/common.js'
import { isRetryable } from '../../core/errors.js'
import { startArtifactServer, type TestArtifactServer } from '../../test/helpers/artifact-server.js'
import { demoServiceArtifact, markerArtifact } from '../../test/helpers/demo-service.js'
import { resourceSpec } from '../../test/helpers/spec.js'
import { createLocalProvisioner } from './createLocalProvisioner.js'
import { scanMarkedProcesses } from './proc.js'

const attack = vi.hoisted(() => ({ bytes: undefined as Buffer | undefined, copies: 0 }))

vi.mock('node:fs/promises', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs/promises')>()
  const copyFile: typeof fs.copyFile = async (src, dest, mode) => {
    if (attack.bytes && String(src).includes('/sha256/')) {
      attack.copies++
      await fs.writeFile(src, attack.bytes)
    }
    return fs.copyFile(src, dest, mode)
  }
  return { ...fs, copyFile, default: { ...fs, copyFile } }
})

const { common, shutdown } = createTestCommon()
const run = Math.random().toString(36).slice(2, 8)

describe('local target: the cached artifact rewritten between verification and copy', () => {
  let server: TestArtifactServer
  let root: string
  beforeAll(async () => {
    server = await startArtifactServer({ demo: demoServiceArtifact() })
    root = await mkdtemp(join(tmpdir(), 'bpo-artifact-modified-'))
  })
  afterAll(async () => {
    await server?.stop()
    await rm(root, { recursive: true, force: true })
    await shutdown()
  })

  test('error: ARTIFACT_MODIFIED (retryable) after two attempts; the rewritten bytes never run', async () => {
    const marker = join(root, 'attacker-code-ran')
    attack.bytes = markerArtifact(marker)
    const operatorId = `artifact-modified-${run}`
    const prov = createLocalProvisioner(common, { rootDir: root, operatorId, healthTimeoutMs: 20_000, stopGraceMs: 500, artifactAllowHosts: ['127.0.0.1'] })
    const err = await prov
      .provision({
        deploymentId: 'modified-1',
        serviceId: '1',
        blueprintId: '1',
        source: { kind: 'testing', url: server.urlOf('demo'), sha256: server.sha256('demo') },
        spec: resourceSpec({ vcpu: 0.5, memoryGiB: 0.25, storageGiB: 1, replicas: 1 }),
        healthPath: '/healthz',
      })
      .then(
        () => undefined,
        (e: unknown) => e,
      )
    expect(err).toMatchObject({ code: 'ARTIFACT_MODIFIED' })
    expect(isRetryable(err)).toBe(true)
    expect(attack.copies).toBe(2)
    expect(existsSync(marker)).toBe(false)
    expect(await scanMarkedProcesses({ ownerKey: 'BPO_OWNER', owner: operatorId, deploymentKey: 'BPO_DEPLOYMENT' })).toEqual([])

    // the attacker gone, the same deployment is served from freshly verified bytes
    attack.bytes = undefined
    await prov.destroy('modified-1')
    const st = await prov.provision({
      deploymentId: 'modified-2',
      serviceId: '1',
      blueprintId: '1',
      source: { kind: 'testing', url: server.urlOf('demo'), sha256: server.sha256('demo') },
      spec: resourceSpec({ vcpu: 0.5, memoryGiB: 0.25, storageGiB: 1, replicas: 1 }),
      healthPath: '/healthz',
    })
    expect(st.replicasReady).toBe(1)
    await prov.destroy('modified-2')
    expect(existsSync(marker)).toBe(false)
    await prov.close()
  }, 90_000)
})
