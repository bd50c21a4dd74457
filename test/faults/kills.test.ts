/**
 * Fault suite, kills: the daemon (`blueprint-operator run`, a real child process on a real anvil chain) SIGKILLs itself
 * at a chosen instant through the fault hook (BPO_FAULT, core/faults.ts); a restarted daemon must finish the service's
 * life with nothing leaked, nothing started twice, one refund, no event missed and a ledger equal to the chain's
 * payouts. Ends with one line: `faults: kills=N reorgs=N rpc_faults=N leaked=0 duplicates=0 double_refunds=0
 * missed_events=0 ledger_mismatch=0`. (Reorg and RPC faults of this suite: test/e2e/reorg.test.ts, faults.test.ts.)
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { processesOf, startChild, startStack, waitFor, type Stack } from '../helpers/stack.js'

/** Crash points placed outside the service manager (see the report for the ones wanted inside it). */
const POINTS = ['local.intent-recorded', 'local.spawned-unrecorded']

const figures = { kills: 0, reorgs: 0, rpc_faults: 0, leaked: 0, duplicates: 0, double_refunds: 0, missed_events: 0, ledger_mismatch: 0 }

describe('faults: SIGKILL at chosen instants', () => {
  let stack: Stack
  let child: ReturnType<typeof startChild> | undefined
  beforeAll(async () => {
    stack = await startStack({ loopMs: 300 })
    stack.doc.log = { level: 'info' }
  })
  afterAll(async () => {
    child?.child.kill('SIGKILL')
    await stack?.stop()
    console.log(`faults: ${Object.entries(figures).map(([k, v]) => `${k}=${v}`).join(' ')}`)
  })

  for (const point of POINTS) {
    test(`behavior: killed at ${point} — the restarted daemon serves once, ends once, refunds once`, { timeout: 180_000 }, async () => {
      const { chain } = stack
      const blueprintId = await stack.registerDemo({ name: `fault-${point}` })
      await chain.customer.mint(3_600_000n)
      const { serviceId } = await chain.customer.requestService({ blueprintId, operator: chain.operatorAddress, tier: 0, ttlSeconds: 3600n, deposit: 3_600_000n })
      const dep = `bp-${chain.chainId}-${serviceId}`

      process.env.BPO_FAULT = point
      child = startChild(stack)
      delete process.env.BPO_FAULT
      const code = await child.exited
      const out = child.output()
      child = undefined
      expect(code).toBeNull() // killed by the signal, no exit code
      expect(out).toContain(`BPO_FAULT: killed at ${point}#1`)
      figures.kills++

      child = startChild(stack)
      const active = await waitFor('active after the crash', () => stack.service(serviceId)?.state === 'active' && stack.service(serviceId), 60_000)
      expect((await fetch(active.endpoints[0]!)).status).toBe(200)
      const running = processesOf(dep, stack.operatorId)
      if (running.length !== 1) figures.duplicates += Math.max(0, running.length - 1)
      expect(running).toHaveLength(1)
      expect(await stack.events(serviceId, 'ServiceActivated')).toHaveLength(1)

      await chain.customer.terminate(serviceId)
      await waitFor('closed', () => stack.service(serviceId)?.state === 'closed', 60_000)
      await waitFor('no processes', () => processesOf(dep, stack.operatorId).length === 0, 30_000).catch(() => undefined)
      figures.leaked += processesOf(dep, stack.operatorId).length
      const refunds = await stack.refunds(serviceId)
      figures.double_refunds += Math.max(0, refunds.length - 1)
      const withdrawn = (await stack.events(serviceId, 'Withdrawn')).reduce((a, e) => a + (e.amount as bigint), 0n)
      const refunded = refunds.reduce((a, r) => a + r.amount, 0n)
      // the follower counts the payouts after the confirmations (the receipt path needs the service manager's change)
      const settled = await waitFor('ledger = chain payouts', () => {
        const l = stack.service(serviceId)?.ledger
        return l && l.withdrawn === withdrawn.toString() && l.refunded === refunded.toString() && l
      }, 30_000).catch(() => undefined)
      if (!settled) figures.ledger_mismatch++
      if (stack.service(serviceId)!.ledger.paid !== '3600000') figures.missed_events++
      child.child.kill('SIGTERM')
      expect(await child.exited).toBe(0)
      child = undefined

      expect({ leaked: figures.leaked, duplicates: figures.duplicates, double_refunds: figures.double_refunds, missed_events: figures.missed_events, ledger_mismatch: figures.ledger_mismatch }).toEqual({
        leaked: 0,
        duplicates: 0,
        double_refunds: 0,
        missed_events: 0,
        ledger_mismatch: 0,
      })
    })
  }
})
