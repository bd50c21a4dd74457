/**
 * Load-based scaling on the local target, driven the way a reconcile loop would drive it (test/helpers/
 * autoscale-driver.ts): the demo service under CPU load (GET /burn) grows from its paid minimum towards the tier's
 * maximum, and shrinks back to the minimum once the load is gone and the scale-down window has passed. The replica
 * counts and times are printed.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { createTestCommon } from '../../core/common.js'
import { detectCgroups } from '../../provisioners/local/cgroups.js'
import { createLocalProvisioner } from '../../provisioners/local/createLocalProvisioner.js'
import { startArtifactServer, type TestArtifactServer } from '../helpers/artifact-server.js'
import { driveAutoscaling, formatTimeline } from '../helpers/autoscale-driver.js'
import { demoServiceArtifact } from '../helpers/demo-service.js'
import { resourceSpec } from '../helpers/spec.js'

const { common, shutdown } = createTestCommon()
const owner = `scale-${Math.random().toString(36).slice(2, 8)}`
let server: TestArtifactServer
let root: string

beforeAll(async () => {
  server = await startArtifactServer({ demo: demoServiceArtifact() })
  root = await mkdtemp(join(tmpdir(), 'bpo-scale-'))
})
afterAll(async () => {
  await server?.stop()
  if (root) await rm(root, { recursive: true, force: true })
  await shutdown()
})

describe('autoscaling on the local target', () => {
  test('behavior: grows under load within the tier bounds and shrinks back to the paid minimum after it', async (ctx) => {
    const cg = await detectCgroups({ mode: 'auto', owner })
    if (cg.mode === 'none') return ctx.skip(`no cgroups here: ${cg.reason}`)
    const prov = createLocalProvisioner(common, { rootDir: root, operatorId: owner, healthTimeoutMs: 30_000, stopGraceMs: 3_000, artifactAllowHosts: ['127.0.0.1'], containers: 'off' })
    const id = 'scale-1'
    const vcpu = 0.25
    try {
      await prov.provision({
        deploymentId: id,
        serviceId: '1',
        blueprintId: '1',
        source: { kind: 'native', url: server.urlOf('demo'), sha256: server.sha256('demo') },
        spec: resourceSpec({ vcpu, memoryGiB: 0.25, replicas: 1 }),
        healthPath: '/healthz',
      })
      const rows = await driveAutoscaling({
        provisioner: prov,
        deploymentId: id,
        vcpuPerReplica: vcpu,
        policy: { min: 1, max: 3, target: 0.6, scaleUpWindowMs: 2_000, scaleDownWindowMs: 6_000, maxSampleAgeMs: 10_000 },
        loadMs: 16_000,
        quietMs: 14_000,
      })
      console.log(formatTimeline(`local target, ${vcpu} vCPU per replica, min 1 max 3, target 60%, up window 2 s, down window 6 s; 3 clients burning CPU for 16 s:`, rows))
      const during = rows.filter((r) => r.t <= 16)
      const peak = Math.max(...rows.map((r) => r.replicas))
      expect(peak).toBeGreaterThan(1)
      expect(peak).toBeLessThanOrEqual(3)
      expect(during.some((r) => r.decision.startsWith('up'))).toBe(true)
      expect(rows.some((r) => r.t > 16 && r.decision.startsWith('down'))).toBe(true)
      expect((await prov.status(id)).replicasWanted).toBe(1)
    } finally {
      await prov.destroy(id)
      await prov.close()
    }
  }, 120_000)
})
