/**
 * One reconcile tick of the daemon's service manager at 1,000 active services makes at most 3 JSON-RPC HTTP
 * requests (the latest block, one getServices over the rolling slice), decides every service's payment state from
 * its recorded facts, and heals the one service whose facts drifted (counted) — against the counting fake node.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { createTestCommon } from '../../core/common.js'
import { fleetService, startFakeEscrowRpc, type FakeEscrowRpc } from '../fakes/escrow-rpc.js'
import { startFleet } from '../helpers/fleet.js'

const n = 1000
let fake: FakeEscrowRpc
let fleet: Awaited<ReturnType<typeof startFleet>>
const dir = mkdtempSync(join(tmpdir(), 'bpo-tick-'))
const { common } = createTestCommon()

beforeAll(async () => {
  fake = await startFakeEscrowRpc(n)
  fleet = await startFleet(common, { n, rpcUrl: fake.url, dir, verifyPerTick: 500 })
}, 60_000)
afterAll(async () => {
  await fleet?.stop()
  await fake?.close()
  rmSync(dir, { recursive: true, force: true })
})

describe('reconcile tick at 1,000 services', () => {
  test('behavior: ≤ 3 JSON-RPC HTTP requests per tick; every service decided from its facts; drift counted and healed', async () => {
    const perTick: Array<{ http: number; calls: number; ethCalls: number }> = []
    for (let t = 0; t < 4; t++) {
      const before = fake.stats()
      await fleet.tick()
      const after = fake.stats()
      perTick.push({ http: after.httpRequests - before.httpRequests, calls: after.calls - before.calls, ethCalls: after.ethCalls - before.ethCalls })
    }
    for (const x of perTick) {
      expect(x.http).toBeLessThanOrEqual(3)
      expect(x.ethCalls).toBe(1) // one getServices over the slice, nothing per service
    }
    const st = fleet.store.read()
    expect(Object.values(st.services).every((s) => s.state === 'active' && s.replicas === 1)).toBe(true)
    // service 1000 drifted on chain by one base unit: seen by the sweep (slice 501..1000), logged, counted, healed
    expect(await common.metrics.render()).toMatch(/bpo_payment_fact_disagreements_total\{field="balance"\} 1\b/)
    expect(st.services['1000']!.chain!.balance).toBe(fleetService(1000n, n)!.chain.balance.toString())
    expect(fleetService(1000n, n)!.chain.balance).not.toBe(fleetService(1000n, n)!.recorded.balance)
  })
})
