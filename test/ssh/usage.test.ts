/**
 * CPU counters of replicas on an SSH host through the host agent's read-only `usage` command: the demo service burns
 * CPU (GET /burn) and its replica's cgroup counter rises by about that much; an idle replica's barely moves.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { parseHostUsage } from '../../provisioners/ssh/usage.js'
import { destroyAll, startSshLab, type SshLab } from './harness.js'

let lab: SshLab
beforeAll(async () => {
  lab = await startSshLab({ hosts: 1 })
})
afterAll(async () => {
  await lab?.stop()
})

describe('ssh: CPU counters', () => {
  test('default: the agent lines parse; anything else is ignored', () => {
    expect(parseHostUsage('cpu 1 123:456 2500000\ncpu x 1:2 3\nnoise\ncpu 0 9:9 10\n')).toEqual([
      { index: 0, id: '9:9', cpuSeconds: 0.00001 },
      { index: 1, id: '123:456', cpuSeconds: 2.5 },
    ])
  })

  test('behavior: status carries per-replica CPU seconds that rise under load', async (ctx) => {
    const prov = lab.provisioner()
    try {
      const st = await prov.provision(lab.request('use-1', { replicas: 2, spec: { vcpu: 1 } }))
      if (!st.usage) return ctx.skip('this host offers no readable cgroup CPU counter')
      expect(st.usage.replicas.map((r) => r.index)).toEqual([0, 1])
      const res = await fetch(`${st.endpoints[0]}/burn?ms=800`)
      expect(res.status).toBe(200)
      const after = (await prov.status('use-1')).usage!
      const d = (i: number) => after.replicas[i]!.cpuSeconds - st.usage!.replicas[i]!.cpuSeconds
      expect(after.replicas.map((r) => r.id)).toEqual(st.usage.replicas.map((r) => r.id))
      expect(d(0)).toBeGreaterThan(0.6)
      expect(d(1)).toBeLessThan(0.3)
      if (process.env.BPO_TEST_TRACE) console.log(`ssh cpu seconds over ${after.at - st.usage.at} ms: replica 0 +${d(0).toFixed(3)}, replica 1 +${d(1).toFixed(3)}`)
      const zero = await prov.scale('use-1', 0)
      expect(zero.usage).toBeUndefined()
    } finally {
      await destroyAll(prov)
    }
  })
})
