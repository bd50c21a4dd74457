/**
 * STOP_FAILED for real: a process that survives SIGKILL. A frozen task (cgroup v1 freezer, FROZEN) keeps a pending
 * SIGKILL until it is thawed, which is what a replica stuck in uninterruptible sleep looks like to the daemon. The
 * destroy reports it (retryable), keeps the deployment's records, and succeeds once the process can die.
 */
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, rm, rmdir, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { createTestCommon } from '../../core/common.js'
import { isRetryable } from '../../core/errors.js'
import { startArtifactServer, type TestArtifactServer } from '../../test/helpers/artifact-server.js'
import { demoServiceArtifact } from '../../test/helpers/demo-service.js'
import { resourceSpec } from '../../test/helpers/spec.js'
import { createLocalProvisioner } from './createLocalProvisioner.js'
import { readManifest } from './manifest.js'
import { isSameProcess, readProcStat } from './proc.js'

const FREEZER = '/sys/fs/cgroup/freezer'
const canFreeze = process.getuid?.() === 0 && existsSync(join(FREEZER, 'cgroup.procs'))
const { common, shutdown } = createTestCommon()
const run = Math.random().toString(36).slice(2, 8)

describe.skipIf(!canFreeze)('local target: a replica that survives SIGKILL (needs root and the cgroup v1 freezer)', () => {
  let server: TestArtifactServer
  let root: string
  const frozen = join(FREEZER, `bpo-stop-failed-${run}`)
  beforeAll(async () => {
    server = await startArtifactServer({ demo: demoServiceArtifact() })
    root = await mkdtemp(join(tmpdir(), 'bpo-stop-failed-'))
    await mkdir(frozen)
  })
  afterAll(async () => {
    await writeFile(join(frozen, 'freezer.state'), 'THAWED').catch(() => undefined)
    for (let i = 0; i < 100 && (await readFile(join(frozen, 'cgroup.procs'), 'utf8').catch(() => '')).trim(); i++) await new Promise((r) => setTimeout(r, 50))
    await rmdir(frozen).catch(() => undefined)
    await server?.stop()
    await rm(root, { recursive: true, force: true })
    await shutdown()
  })

  test('error: a frozen replica is STOP_FAILED (retryable), its deployment kept; thawed, the destroy completes', async () => {
    const prov = createLocalProvisioner(common, { rootDir: root, operatorId: `stop-failed-${run}`, healthTimeoutMs: 45_000, stopGraceMs: 500, artifactAllowHosts: ['127.0.0.1'] })
    const id = 'frozen-1'
    await prov.provision({
      deploymentId: id,
      serviceId: '1',
      blueprintId: '1',
      source: { kind: 'testing', url: server.urlOf('demo'), sha256: server.sha256('demo') },
      spec: resourceSpec({ vcpu: 0.5, memoryGiB: 0.25, storageGiB: 1, replicas: 1 }),
      healthPath: '/healthz',
    })
    const m = await readManifest(join(root, 'deployments', id))
    const pid = m!.replicaRecords[0]!.pid!
    const startTime = (await readProcStat(pid))!.startTime
    await writeFile(join(frozen, 'cgroup.procs'), String(pid))
    await writeFile(join(frozen, 'freezer.state'), 'FROZEN')

    const err = await prov.destroy(id).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(err).toMatchObject({ code: 'STOP_FAILED' })
    expect(isRetryable(err)).toBe(true)
    expect(String((err as Error).message)).toContain(String(pid))
    // nothing was forgotten: the process is still there and the deployment's records with it
    expect(await isSameProcess(pid, startTime)).toBe(true)
    expect(await readManifest(join(root, 'deployments', id))).toBeDefined()

    await writeFile(join(frozen, 'freezer.state'), 'THAWED')
    await prov.destroy(id)
    expect(await isSameProcess(pid, startTime)).toBe(false)
    expect(existsSync(join(root, 'deployments', id))).toBe(false)
    await prov.close()
  }, 90_000)
})
