/**
 * The provisioner contract suite: every target (local, ssh, kubernetes, clouds) runs it from its own test file with
 * `runProvisionerContract('<name>', setup)`. It checks the `Provisioner` contract of provisioners/types.ts.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { isRetryable } from '../../core/errors.js'
import type { DeploymentRequest, DeploymentStatus, OwnedResource, Provisioner } from '../../provisioners/types.js'
import { readDemoInfo } from '../helpers/demo-service.js'

export type ContractHarness = {
  /** The provisioner under test, with this suite's own ownership label. */
  provisioner: Provisioner
  /** Same target, another operator's ownership label; enables the ownership tests. */
  otherOperator?: Provisioner
  /**
   * A fresh instance on the same target and state, as a restarted daemon would create after a crash; enables the
   * adoption test. The suite closes it.
   */
  reopen?: () => Promise<Provisioner>
  /** A request for `deploymentId` that the target can run (default 1 replica). */
  makeRequest(deploymentId: string, o?: { replicas?: number }): DeploymentRequest
  /** True when `endpoint` answers; enables the "endpoints really serve" checks. */
  probe?(endpoint: string): Promise<boolean>
  /**
   * True when scale(0) keeps the deployment's data. With `probe`, the workload must be the demo service
   * (test/helpers/demo-service.ts): its `starts` counter, kept in DATA_DIR, proves the data survived.
   */
  supportsDataKeep: boolean
  /**
   * How many times a replica started on the data behind `endpoint` (default: the demo service's `starts`, see
   * readDemoInfo). A workload of its own (a container image) says how it counts; scale(0) and back must add one.
   */
  readStarts?(endpoint: string): Promise<number>
  /**
   * True when status reports every running replica's CPU counters (`usage`, what the daemon's load autoscaler reads:
   * cgroup counters on the machine, through the host agent on SSH hosts and cloud VMs); enables the usage checks.
   */
  reportsUsage?: boolean
  /** A provisioner pointed at a dead target (refused connections); enables the unreachable test. */
  unreachable?: () => Promise<Provisioner>
  /** Close the provisioners and stop whatever setup started. */
  teardown(): Promise<void>
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p
  } catch (err) {
    return err
  }
  throw new Error('expected the call to reject, it resolved')
}

const resourcesOf = (all: OwnedResource[], deploymentId: string) =>
  all
    .filter((r) => r.deploymentId === deploymentId)
    .map((r) => `${r.kind}:${r.id}`)
    .sort()

function expectReady(st: DeploymentStatus, deploymentId: string, replicas: number) {
  expect(st.deploymentId).toBe(deploymentId)
  expect(st.exists).toBe(true)
  expect(st.replicasWanted).toBe(replicas)
  expect(st.replicasReady).toBe(replicas)
  expect(st.healthy).toBe(true)
  if (replicas > 0) expect(st.endpoints.length).toBeGreaterThanOrEqual(1)
  else expect(st.endpoints).toEqual([])
}

/** Register the contract suite for one provisioner. `setup` runs once (beforeAll); `teardown` once at the end. */
export function runProvisionerContract(name: string, setup: () => Promise<ContractHarness>): void {
  describe(`provisioner contract: ${name}`, () => {
    let h: ContractHarness
    const tag = Math.random().toString(36).slice(2, 7)
    let seq = 0
    const created: string[] = []
    const newId = () => {
      const id = `ct-${tag}-${++seq}`
      created.push(id)
      return id
    }
    const probeAll = async (endpoints: string[]) => (h.probe ? Promise.all(endpoints.map((e) => h.probe!(e))) : [])

    beforeAll(async () => {
      h = await setup()
    })
    afterAll(async () => {
      if (!h) return
      for (const id of created) {
        await h.provisioner.destroy(id).catch(() => undefined)
        await h.otherOperator?.destroy(id).catch(() => undefined)
      }
      await h.teardown()
    })

    test('default: provision starts the wanted replicas and status reports them', async () => {
      const id = newId()
      const st = await h.provisioner.provision(h.makeRequest(id))
      expectReady(st, id, 1)
      if (h.probe) expect(await probeAll(st.endpoints)).toEqual(st.endpoints.map(() => true))
      const again = await h.provisioner.status(id)
      expectReady(again, id, 1)
      expect(again.endpoints).toEqual(st.endpoints)
      const owned = await h.provisioner.listOwned()
      expect(resourcesOf(owned, id).length).toBeGreaterThanOrEqual(1)
      for (const r of owned) {
        expect(typeof r.kind).toBe('string')
        expect(r.id).not.toBe('')
      }
      await h.provisioner.destroy(id)
    })

    test('default: status of an unknown deployment says it does not exist', async () => {
      const st = await h.provisioner.status(`ct-${tag}-never`)
      expect(st.exists).toBe(false)
      expect(st.replicasReady).toBe(0)
      expect(st.endpoints).toEqual([])
    })

    test('behavior: provision is idempotent on the deployment id', async () => {
      const id = newId()
      const first = await h.provisioner.provision(h.makeRequest(id, { replicas: 2 }))
      expectReady(first, id, 2)
      const before = resourcesOf(await h.provisioner.listOwned(), id)
      const second = await h.provisioner.provision(h.makeRequest(id, { replicas: 2 }))
      expectReady(second, id, 2)
      expect([...second.endpoints].sort()).toEqual([...first.endpoints].sort())
      expect(resourcesOf(await h.provisioner.listOwned(), id)).toEqual(before)
      await h.provisioner.destroy(id)
    })

    test('behavior: a new provisioner instance adopts what an earlier one created', async (ctx) => {
      if (!h.reopen) return ctx.skip('harness has no reopen()')
      const id = newId()
      const first = await h.provisioner.provision(h.makeRequest(id))
      const before = resourcesOf(await h.provisioner.listOwned(), id)
      const fresh = await h.reopen()
      try {
        const st = await fresh.status(id)
        expectReady(st, id, 1)
        const adopted = await fresh.provision(h.makeRequest(id))
        expectReady(adopted, id, 1)
        expect(adopted.endpoints).toEqual(first.endpoints)
        expect(resourcesOf(await fresh.listOwned(), id)).toEqual(before)
        await fresh.destroy(id)
        expect((await h.provisioner.status(id)).exists).toBe(false)
      } finally {
        await fresh.close()
      }
    })

    test('behavior: scale up and down', async () => {
      const id = newId()
      expectReady(await h.provisioner.provision(h.makeRequest(id)), id, 1)
      const one = resourcesOf(await h.provisioner.listOwned(), id)
      const up = await h.provisioner.scale(id, 3)
      expectReady(up, id, 3)
      if (h.probe) expect(await probeAll(up.endpoints)).toEqual(up.endpoints.map(() => true))
      expect(resourcesOf(await h.provisioner.listOwned(), id).length).toBeGreaterThanOrEqual(one.length)
      const down = await h.provisioner.scale(id, 1)
      expectReady(down, id, 1)
      expectReady(await h.provisioner.status(id), id, 1)
      if (h.probe) expect(await probeAll(down.endpoints)).toEqual(down.endpoints.map(() => true))
      await h.provisioner.destroy(id)
    })

    test('behavior: status reports CPU counters for each running replica, one reading per index', async (ctx) => {
      if (!h.reportsUsage) return ctx.skip('harness does not report CPU counters')
      const id = newId()
      expectReady(await h.provisioner.provision(h.makeRequest(id)), id, 1)
      const counters = async () => {
        const u = (await h.provisioner.status(id)).usage
        expect(u, 'status().usage').toBeDefined()
        for (const r of u!.replicas) {
          expect(r.cpuSeconds).toBeGreaterThanOrEqual(0)
          expect(r.id).not.toBe('')
        }
        return u!.replicas
      }
      expect((await counters()).map((r) => r.index)).toEqual([0])
      expectReady(await h.provisioner.scale(id, 3), id, 3)
      const three = await counters()
      expect(three.map((r) => r.index)).toEqual([0, 1, 2])
      // each replica its own incarnation: the autoscaler compares readings per (index, id)
      expect(new Set(three.map((r) => r.id)).size).toBe(3)
      expectReady(await h.provisioner.scale(id, 1), id, 1)
      expect((await counters()).map((r) => r.index)).toEqual([0])
      await h.provisioner.destroy(id)
    })

    test('behavior: scale(0) stops every replica and keeps the data; scaling back restores it', async () => {
      const id = newId()
      const st = await h.provisioner.provision(h.makeRequest(id))
      expectReady(st, id, 1)
      const checkData = h.supportsDataKeep && !!h.probe
      const starts = async (endpoint: string) => (h.readStarts ? h.readStarts(endpoint) : (await readDemoInfo(endpoint)).starts)
      const startsBefore = checkData ? await starts(st.endpoints[0]!) : 0
      if (checkData) expect(startsBefore).toBeGreaterThanOrEqual(1)
      const zero = await h.provisioner.scale(id, 0)
      expect(zero.replicasWanted).toBe(0)
      expect(zero.replicasReady).toBe(0)
      expect(zero.endpoints).toEqual([])
      expect(zero.healthy).toBe(true)
      if (h.supportsDataKeep) expect(zero.exists).toBe(true)
      if (h.probe) expect(await probeAll(st.endpoints)).toEqual(st.endpoints.map(() => false))
      const again = await h.provisioner.status(id)
      expect(again.replicasWanted).toBe(0)
      expect(again.replicasReady).toBe(0)
      const back = await h.provisioner.scale(id, 1)
      expectReady(back, id, 1)
      if (checkData) {
        if (!h.readStarts) expect((await readDemoInfo(back.endpoints[0]!)).deployment).toBe(id)
        // a fresh data directory would count 1 again
        expect(await starts(back.endpoints[0]!)).toBe(startsBefore + 1)
      }
      await h.provisioner.destroy(id)
    })

    test('behavior: restart leaves a healthy deployment healthy', async () => {
      const id = newId()
      expectReady(await h.provisioner.provision(h.makeRequest(id)), id, 1)
      expectReady(await h.provisioner.restart(id), id, 1)
      await h.provisioner.destroy(id)
    })

    test('behavior: destroy removes every resource; already gone is success', async () => {
      const id = newId()
      const st = await h.provisioner.provision(h.makeRequest(id, { replicas: 2 }))
      expectReady(st, id, 2)
      await h.provisioner.destroy(id)
      const gone = await h.provisioner.status(id)
      expect(gone.exists).toBe(false)
      expect(gone.replicasReady).toBe(0)
      expect(gone.endpoints).toEqual([])
      expect(resourcesOf(await h.provisioner.listOwned(), id)).toEqual([])
      if (h.probe) expect(await probeAll(st.endpoints)).toEqual(st.endpoints.map(() => false))
      await h.provisioner.destroy(id)
      await h.provisioner.destroy(`ct-${tag}-never`)
    })

    test("behavior: listOwned returns exactly this operator's resources", async (ctx) => {
      if (!h.otherOperator) return ctx.skip('harness has no otherOperator')
      const mine = newId()
      const theirs = newId()
      expectReady(await h.provisioner.provision(h.makeRequest(mine)), mine, 1)
      expectReady(await h.otherOperator.provision(h.makeRequest(theirs)), theirs, 1)
      const ownedByMe = await h.provisioner.listOwned()
      const ownedByThem = await h.otherOperator.listOwned()
      expect(resourcesOf(ownedByMe, mine).length).toBeGreaterThanOrEqual(1)
      expect(resourcesOf(ownedByMe, theirs)).toEqual([])
      expect(resourcesOf(ownedByThem, theirs).length).toBeGreaterThanOrEqual(1)
      expect(resourcesOf(ownedByThem, mine)).toEqual([])
      for (const r of ownedByMe) expect(created).toContain(r.deploymentId)
      const theirIds = new Set(ownedByThem.map((r) => `${r.kind}:${r.id}`))
      for (const r of ownedByMe) expect(theirIds.has(`${r.kind}:${r.id}`)).toBe(false)
      // destroying a deployment id that only the other operator runs must not touch it
      await h.provisioner.destroy(theirs)
      expectReady(await h.otherOperator.status(theirs), theirs, 1)
      await h.otherOperator.destroy(theirs)
      await h.provisioner.destroy(mine)
      expect(resourcesOf(await h.provisioner.listOwned(), mine)).toEqual([])
    })

    test('behavior: an already-aborted signal rejects every call without side effects', async () => {
      const id = newId()
      const ac = new AbortController()
      ac.abort(new Error('caller gave up'))
      const o = { signal: ac.signal }
      const calls: [string, () => Promise<unknown>][] = [
        ['provision', () => h.provisioner.provision(h.makeRequest(id), o)],
        ['status', () => h.provisioner.status(id, o)],
        ['scale', () => h.provisioner.scale(id, 2, o)],
        ['restart', () => h.provisioner.restart(id, o)],
        ['destroy', () => h.provisioner.destroy(id, o)],
        ['listOwned', () => h.provisioner.listOwned(o)],
      ]
      for (const [what, call] of calls) {
        const err = await rejection(call())
        expect({ what, code: (err as { code?: unknown }).code, retryable: isRetryable(err) }).toEqual({ what, code: 'ABORTED', retryable: false })
      }
      const st = await h.provisioner.status(id)
      expect(st.exists).toBe(false)
      expect(resourcesOf(await h.provisioner.listOwned(), id)).toEqual([])
    })

    test('behavior: aborting a provision in flight rejects; the next provision converges without duplicates', async () => {
      const id = newId()
      const ac = new AbortController()
      const pending = h.provisioner.provision(h.makeRequest(id, { replicas: 2 }), { signal: ac.signal })
      ac.abort(new Error('caller gave up'))
      const err = await rejection(pending)
      expect((err as { code?: unknown }).code).toBe('ABORTED')
      const st = await h.provisioner.provision(h.makeRequest(id, { replicas: 2 }))
      expectReady(st, id, 2)
      const once = resourcesOf(await h.provisioner.listOwned(), id)
      expectReady(await h.provisioner.provision(h.makeRequest(id, { replicas: 2 })), id, 2)
      expect(resourcesOf(await h.provisioner.listOwned(), id)).toEqual(once)
      await h.provisioner.destroy(id)
    })

    test('behavior: a call that exceeds its timeout rejects with a retryable error; a retry converges', async () => {
      const id = newId()
      const err = await rejection(h.provisioner.provision(h.makeRequest(id), { timeoutMs: 1 }))
      expect((err as { code?: unknown }).code).toBe('TIMEOUT')
      expect(isRetryable(err)).toBe(true)
      const st = await h.provisioner.provision(h.makeRequest(id))
      expectReady(st, id, 1)
      const once = resourcesOf(await h.provisioner.listOwned(), id)
      expectReady(await h.provisioner.status(id, { timeoutMs: 60_000 }), id, 1)
      expect(resourcesOf(await h.provisioner.listOwned({ timeoutMs: 60_000 }), id)).toEqual(once)
      await h.provisioner.destroy(id, { timeoutMs: 60_000 })
      expect((await h.provisioner.status(id)).exists).toBe(false)
    })

    test('error: an unreachable target gives retryable errors, never a crash', async (ctx) => {
      if (!h.unreachable) return ctx.skip('harness has no unreachable target')
      const dead = await h.unreachable()
      try {
        const id = `ct-${tag}-dead`
        const o = { timeoutMs: 30_000 }
        const calls: [string, () => Promise<unknown>][] = [
          ['provision', () => dead.provision(h.makeRequest(id), o)],
          ['status', () => dead.status(id, o)],
          ['scale', () => dead.scale(id, 1, o)],
          ['restart', () => dead.restart(id, o)],
          ['destroy', () => dead.destroy(id, o)],
          ['listOwned', () => dead.listOwned(o)],
        ]
        for (const [what, call] of calls) {
          const err = await rejection(call())
          expect({ what, retryable: isRetryable(err) }).toEqual({ what, retryable: true })
        }
      } finally {
        await dead.close()
      }
    })
  })
}
