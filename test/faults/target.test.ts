/**
 * Fault suite, targets: a deployment lost behind the daemon's back (every replica killed and its directory — artifact
 * copy, manifest, logs — removed from the local target, as a wiped disk or a too-eager operator would) is noticed by
 * the loop and provisioned again on the customer's same endpoint, without a second activation; the books still equal
 * the chain's payouts at the end.
 */
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { processesOf, startInProcess, startStack, waitFor, type Stack } from '../helpers/stack.js'
import { recordFigures } from './figures.js'

const figures = { leaked: 0, duplicates: 0, double_refunds: 0, missed_events: 0, ledger_mismatch: 0 }

describe('faults: a target that loses a deployment', () => {
  let stack: Stack
  let d: Awaited<ReturnType<typeof startInProcess>>
  beforeAll(async () => {
    stack = await startStack({ loopMs: 300 })
    d = await startInProcess(stack)
  })
  afterAll(async () => {
    await d?.stop()
    await stack?.stop()
    recordFigures('target', figures)
  })

  test('behavior: a deployment wiped from its target is provisioned again on the same endpoint; activated once, refunded once', { timeout: 180_000 }, async () => {
    const { chain } = stack
    const blueprintId = await stack.registerDemo({ name: 'lost' })
    await chain.customer.mint(3_600_000n)
    const { serviceId } = await chain.customer.requestService({ blueprintId, operator: chain.operatorAddress, tier: 0, ttlSeconds: 3600n, deposit: 3_600_000n })
    const dep = `bp-${chain.chainId}-${serviceId}`
    const active = await waitFor('active', () => stack.service(serviceId)?.state === 'active' && stack.service(serviceId), 60_000)
    const endpoint = active.endpoints[0]!
    expect((await fetch(endpoint)).status).toBe(200)

    // the deployment disappears: its processes and everything of it on disk
    for (const pid of processesOf(dep, stack.operatorId)) process.kill(pid, 'SIGKILL')
    rmSync(join(stack.dataDir, 'local', 'deployments', dep), { recursive: true, force: true })

    await waitFor('served again', async () => processesOf(dep, stack.operatorId).length === 1 && (await fetch(endpoint).then((r) => r.status === 200, () => false)), 60_000)
    const s = stack.service(serviceId)!
    expect(s.state).toBe('active')
    expect(s.endpoints).toEqual([endpoint])
    expect(s.health.restarts).toBeGreaterThanOrEqual(1)
    expect(await stack.events(serviceId, 'ServiceActivated')).toHaveLength(1)

    await chain.customer.terminate(serviceId)
    await waitFor('closed', () => stack.service(serviceId)?.state === 'closed', 60_000)
    await waitFor('no processes', () => processesOf(dep, stack.operatorId).length === 0, 30_000).catch(() => undefined)
    figures.leaked += processesOf(dep, stack.operatorId).length
    const refunds = await stack.refunds(serviceId)
    figures.double_refunds += Math.max(0, refunds.length - 1)
    const withdrawn = (await stack.events(serviceId, 'Withdrawn')).reduce((a, e) => a + (e.amount as bigint), 0n)
    const refunded = refunds.reduce((a, r) => a + r.amount, 0n)
    expect(withdrawn + refunded).toBe(3_600_000n)
    const settled = await waitFor('ledger = chain payouts', () => {
      const l = stack.service(serviceId)?.ledger
      return l && l.withdrawn === withdrawn.toString() && l.refunded === refunded.toString() && l
    }, 30_000).catch(() => undefined)
    if (!settled) figures.ledger_mismatch++
    expect(figures).toEqual({ leaked: 0, duplicates: 0, double_refunds: 0, missed_events: 0, ledger_mismatch: 0 })
  })
})
