/**
 * Capacity accounting and placement across two real sshd hosts: the cheapest host that fits, refusal when nothing
 * fits, pinning, and a ledger that survives a restart.
 */
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { startSshLab, type SshLab } from './harness.js'
import { sshdMissing } from '../helpers/sshd.js'

const noSshd = sshdMissing()
if (noSshd) test.skip(`real sshd suites: ${noSshd}`, () => undefined)

async function rejection(p: Promise<unknown>): Promise<Error & { code?: string; reason?: string; retryable?: boolean; details?: string[] }> {
  try {
    await p
  } catch (err) {
    return err as Error
  }
  throw new Error('expected a rejection')
}

let lab: SshLab
beforeAll(async () => {
  lab = await startSshLab({ hosts: 2 })
  // h1: dear and roomy; h2: cheap and small
  lab.hosts[0]!.hourlyUsd = '0.10'
  lab.hosts[0]!.capacity = { vcpu: 4, memoryGiB: 4, storageGiB: 20 }
  lab.hosts[1]!.hourlyUsd = '0.05'
  lab.hosts[1]!.capacity = { vcpu: 2, memoryGiB: 2, storageGiB: 10 }
})
afterAll(async () => {
  await lab?.stop()
})

describe.skipIf(!!noSshd)('ssh capacity and placement', () => {
  test('behavior: cheapest host that fits; refusal when nothing fits; the ledger survives a restart', async () => {
    const stateDir = join(lab.dir, 'state-capacity')
    const prov = lab.provisioner({ stateDir })
    const small = { vcpu: 1, memoryGiB: 0.25, storageGiB: 1 }

    const a = await prov.provision(lab.request('cap-a', { spec: small }))
    expect(a.placement).toBe('h2')

    // h2 has 1 vCPU left, so 2 vCPU go to the dearer h1
    const b = await prov.provision(lab.request('cap-b', { spec: { ...small, vcpu: 2 } }))
    expect(b.placement).toBe('h1')

    const tooBig = await rejection(prov.provision(lab.request('cap-c', { spec: { ...small, vcpu: 8 } })))
    expect({ code: tooBig.code, reason: tooBig.reason, retryable: tooBig.retryable }).toEqual({ code: 'NO_FEASIBLE_OFFER', reason: 'NO_FEASIBLE_OFFER', retryable: false })
    expect(tooBig.details?.join('\n')).toMatch(/h1: free 2 vCPU/)
    expect((await prov.listOwned()).filter((r) => r.deploymentId === 'cap-c')).toEqual([])
    expect(prov.placements().map((x) => x.deploymentId).sort()).toEqual(['cap-a', 'cap-b'])

    const wrongRegion = await rejection(prov.provision(lab.request('cap-r', { spec: { ...small, regions: ['us'] } })))
    expect(wrongRegion.reason).toBe('NO_FEASIBLE_OFFER')

    // scaling beyond what the host holds is refused and leaves the deployment as it was
    const over = await rejection(prov.scale('cap-a', 3))
    expect(over.reason).toBe('NO_FEASIBLE_OFFER')
    const stillA = await prov.status('cap-a')
    expect({ wanted: stillA.replicasWanted, ready: stillA.replicasReady }).toEqual({ wanted: 1, ready: 1 })
    expect((await prov.scale('cap-a', 2)).replicasReady).toBe(2)

    // a pinned placement wins over price
    const d = await prov.provision(lab.request('cap-d', { spec: { ...small, vcpu: 0.5 }, placement: 'h1' }))
    expect(d.placement).toBe('h1')
    const pinnedFull = await rejection(prov.provision(lab.request('cap-e', { spec: small, placement: 'h2' })))
    expect(pinnedFull.reason).toBe('NO_FEASIBLE_OFFER')

    const cap = Object.fromEntries(prov.capacity().map((c) => [c.host, c]))
    expect(cap.h1!.used).toEqual({ vcpu: 2.5, memoryGiB: 0.5, storageGiB: 2 })
    expect(cap.h2!.free).toEqual({ vcpu: 0, memoryGiB: 1.5, storageGiB: 8 })

    // a restarted daemon (same state dir) sees the same reservations
    const reopened = lab.provisioner({ stateDir })
    expect(reopened.capacity()).toEqual(prov.capacity())
    await reopened.close()

    // scale to zero frees CPU and memory, keeps storage for the kept data
    await prov.scale('cap-a', 0)
    const zero = prov.capacity().find((c) => c.host === 'h2')!
    expect(zero.used).toEqual({ vcpu: 0, memoryGiB: 0, storageGiB: 2 })

    for (const id of ['cap-a', 'cap-b', 'cap-d']) await prov.destroy(id)
    for (const c of prov.capacity()) expect(c.used).toEqual({ vcpu: 0, memoryGiB: 0, storageGiB: 0 })
    expect(prov.placements()).toEqual([])
  })

  test('behavior: concurrent placements never count on the same free capacity', async () => {
    const prov = lab.provisioner()
    // h2 (cheap) holds one 2-vCPU replica, h1 holds two: three concurrent requests fill both, none is refused
    const ids = ['cap-p1', 'cap-p2', 'cap-p3']
    try {
      const done = await Promise.all(ids.map((id) => prov.provision(lab.request(id, { spec: { vcpu: 2, memoryGiB: 0.25, storageGiB: 1 } }))))
      expect(done.map((x) => x.placement).sort()).toEqual(['h1', 'h1', 'h2'])
      const fourth = await rejection(prov.provision(lab.request('cap-p4', { spec: { vcpu: 2, memoryGiB: 0.25, storageGiB: 1 } })))
      expect(fourth.reason).toBe('NO_FEASIBLE_OFFER')
    } finally {
      for (const id of [...ids, 'cap-p4']) await prov.destroy(id)
    }
  })

  test('behavior: a daemon that lost its state dir finds its deployments on the hosts and accounts for them again', async () => {
    const first = lab.provisioner()
    const st = await first.provision(lab.request('cap-lost', { replicas: 2, spec: { vcpu: 0.5, memoryGiB: 0.25, storageGiB: 1 } }))
    await first.close()
    const fresh = lab.provisioner()
    expect(fresh.placements()).toEqual([])
    const seen = await fresh.status('cap-lost')
    expect({ exists: seen.exists, ready: seen.replicasReady, placement: seen.placement }).toEqual({ exists: true, ready: 2, placement: st.placement })
    const adopted = await fresh.provision(lab.request('cap-lost', { replicas: 2, spec: { vcpu: 0.5, memoryGiB: 0.25, storageGiB: 1 } }))
    expect([...adopted.endpoints].sort()).toEqual([...st.endpoints].sort())
    expect(fresh.placements().map((x) => [x.deploymentId, x.host, x.replicas])).toEqual([['cap-lost', st.placement, 2]])
    expect(fresh.capacity().find((c) => c.host === st.placement)!.used).toEqual({ vcpu: 1, memoryGiB: 0.5, storageGiB: 2 })
    await fresh.destroy('cap-lost')
    expect((await fresh.status('cap-lost')).exists).toBe(false)
  })

  test('error: GPU requests fit no SSH host', async () => {
    const prov = lab.provisioner()
    const err = await rejection(prov.provision(lab.request('cap-gpu', { spec: { gpu: { count: 1 } } })))
    expect(err.reason).toBe('NO_FEASIBLE_OFFER')
    expect(prov.placements()).toEqual([])
  })
})
