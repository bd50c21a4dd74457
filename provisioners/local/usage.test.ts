/**
 * CPU counters of native replicas on the local target, live: the demo service burns CPU through GET /burn and its
 * replica's cgroup counter (v1 cpuacct.usage here, v2 cpu.stat elsewhere) rises by about that much.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { createTestCommon } from '../../core/common.js'
import { startArtifactServer, type TestArtifactServer } from '../../test/helpers/artifact-server.js'
import { demoServiceArtifact } from '../../test/helpers/demo-service.js'
import { resourceSpec } from '../../test/helpers/spec.js'
import { detectCgroups } from './cgroups.js'
import { createLocalProvisioner } from './createLocalProvisioner.js'

const { common, shutdown } = createTestCommon()
const owner = `usage-${Math.random().toString(36).slice(2, 8)}`
let server: TestArtifactServer
let root: string

beforeAll(async () => {
  server = await startArtifactServer({ demo: demoServiceArtifact() })
  root = await mkdtemp(join(tmpdir(), 'bpo-usage-'))
})
afterAll(async () => {
  await server?.stop()
  if (root) await rm(root, { recursive: true, force: true })
  await shutdown()
})

const cgroupsMissing = async () => {
  const cg = await detectCgroups({ mode: 'auto', owner })
  return cg.mode === 'none' ? cg.reason : undefined
}

describe('local target: CPU counters of native replicas', () => {
  test('behavior: status carries per-replica CPU seconds that rise under load', async (ctx) => {
    const why = await cgroupsMissing()
    if (why) return ctx.skip(`no cgroups here: ${why}`)
    const prov = createLocalProvisioner(common, { rootDir: root, operatorId: owner, healthTimeoutMs: 30_000, stopGraceMs: 3_000, artifactAllowHosts: ['127.0.0.1'], containers: 'off' })
    const id = 'usage-1'
    try {
      const st = await prov.provision({
        deploymentId: id,
        serviceId: '1',
        blueprintId: '1',
        source: { kind: 'native', url: server.urlOf('demo'), sha256: server.sha256('demo') },
        spec: resourceSpec({ vcpu: 1, memoryGiB: 0.25, replicas: 2 }),
        healthPath: '/healthz',
      })
      expect(st.usage?.replicas.map((r) => r.index)).toEqual([0, 1])
      const before = st.usage!
      // replica 0 burns ~800 ms of CPU, replica 1 stays idle
      const res = await fetch(`${st.endpoints[0]}/burn?ms=800`)
      expect(res.status).toBe(200)
      const after = (await prov.status(id)).usage!
      expect(after.at).toBeGreaterThan(before.at)
      const d = (i: number) => after.replicas[i]!.cpuSeconds - before.replicas[i]!.cpuSeconds
      expect(after.replicas.map((r) => r.id)).toEqual(before.replicas.map((r) => r.id))
      expect(d(0)).toBeGreaterThan(0.6)
      expect(d(1)).toBeLessThan(0.3)
      if (process.env.BPO_TEST_TRACE) console.log(`cpu seconds over ${after.at - before.at} ms: replica 0 +${d(0).toFixed(3)}, replica 1 +${d(1).toFixed(3)}`)

      const zero = await prov.scale(id, 0)
      expect(zero.usage).toBeUndefined()
    } finally {
      await prov.destroy(id)
      await prov.close()
    }
  })
})
