/**
 * The local target's refusals that need no failing workload: a port range with no free port, and calls after close().
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { createTestCommon } from '../../core/common.js'
import { startArtifactServer, type TestArtifactServer } from '../../test/helpers/artifact-server.js'
import { demoServiceArtifact } from '../../test/helpers/demo-service.js'
import { resourceSpec } from '../../test/helpers/spec.js'
import type { DeploymentRequest } from '../types.js'
import { createLocalProvisioner, type LocalProvisionerParameters } from './createLocalProvisioner.js'
import { createLocalContext } from './native/context.js'
import { startReplica } from './native/startReplica.js'
import { scanMarkedProcesses } from './proc.js'

const { common, shutdown } = createTestCommon()
const owner = `refuse-${Math.random().toString(36).slice(2, 8)}`
let server: TestArtifactServer
let root: string

const params = (o: Partial<LocalProvisionerParameters> = {}): LocalProvisionerParameters => ({
  rootDir: root,
  operatorId: owner,
  healthTimeoutMs: 30_000,
  stopGraceMs: 2_000,
  artifactAllowHosts: ['127.0.0.1'],
  containers: 'off',
  ...o,
})

const request = (deploymentId: string): DeploymentRequest => ({
  deploymentId,
  serviceId: '7',
  blueprintId: '3',
  source: { kind: 'native', url: server.urlOf('demo'), sha256: server.sha256('demo') },
  spec: resourceSpec({ vcpu: 0.5, memoryGiB: 0.25, storageGiB: 1, replicas: 1 }),
  healthPath: '/healthz',
})

/** Listen on an OS-chosen port of 127.0.0.1 (a port another program holds). */
function occupy(): Promise<{ server: Server; port: number }> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen({ port: 0, host: '127.0.0.1', exclusive: true }, () => resolve({ server: s, port: (s.address() as { port: number }).port }))
  })
}

beforeAll(async () => {
  server = await startArtifactServer({ demo: demoServiceArtifact() })
  root = await mkdtemp(join(tmpdir(), 'bpo-local-refuse-'))
})
afterAll(async () => {
  await server?.stop()
  if (root) await rm(root, { recursive: true, force: true })
  await shutdown()
})

describe('createLocalProvisioner: refusals', () => {
  test('error: every port of the range held by another program is NO_FREE_PORT (retryable), no replica left running', async () => {
    const held = await occupy()
    const prov = createLocalProvisioner(common, params({ portRange: [held.port, held.port], stableEndpoints: false }))
    try {
      const err = await prov.provision(request('noport-1')).then(
        () => undefined,
        (e: unknown) => e as { code?: string; retryable?: boolean; message: string },
      )
      expect(err).toMatchObject({ code: 'NO_FREE_PORT', retryable: true })
      expect(err!.message).toContain(`no free port in ${held.port}-${held.port}`)
      expect(await scanMarkedProcesses({ ownerKey: 'BPO_OWNER', owner, deploymentKey: 'BPO_DEPLOYMENT' })).toEqual([])
      // the port frees up: the same request now runs on it
      await new Promise<void>((r) => held.server.close(() => r()))
      const st = await prov.provision(request('noport-1'))
      expect(st.endpoints).toEqual([`http://127.0.0.1:${held.port}`])
      await prov.destroy('noport-1')
    } finally {
      held.server.close()
      await prov.close()
    }
  })

  test('error: a closed provisioner refuses every call with PROVISIONER_CLOSED and starts nothing', async () => {
    const prov = createLocalProvisioner(common, params())
    expect((await prov.status('closed-1')).exists).toBe(false)
    await prov.close()
    await expect(prov.status('closed-1')).rejects.toMatchObject({ code: 'PROVISIONER_CLOSED' })
    await expect(prov.provision(request('closed-1'))).rejects.toMatchObject({ code: 'PROVISIONER_CLOSED' })
    await expect(prov.destroy('closed-1')).rejects.toMatchObject({ code: 'PROVISIONER_CLOSED' })
    expect(await readdir(join(root, 'deployments')).catch(() => [])).not.toContain('closed-1')
    expect(await scanMarkedProcesses({ ownerKey: 'BPO_OWNER', owner, deploymentKey: 'BPO_DEPLOYMENT' })).toEqual([])
  })
})

describe('startReplica: the artifact guard', () => {
  test('error: ARTIFACT_MISSING — a manifest without a verified artifact never starts a replica', async () => {
    const ctx = createLocalContext(common, params())
    const at = new Date().toISOString()
    const manifest = { version: 1 as const, deploymentId: `${owner}-noartifact`, operatorId: owner, request: request(`${owner}-noartifact`), replicas: 1, replicaRecords: [], createdAt: at, updatedAt: at }
    await expect(startReplica(ctx, manifest, 0, new AbortController().signal)).rejects.toMatchObject({ code: 'ARTIFACT_MISSING', retryable: true })
    expect(await scanMarkedProcesses({ ownerKey: 'BPO_OWNER', owner, deploymentKey: 'BPO_DEPLOYMENT' })).toEqual([])
  })
})
