/**
 * Fault suite, kills: the daemon (`blueprint-operator run`, a real child process on a real anvil chain) SIGKILLs itself
 * at chosen instants through the fault hook (BPO_FAULT, core/faults.ts). One service's whole life is walked with a
 * kill at every named instant in turn — between each intent and its side effect, between each side effect and its
 * record, mid-transaction of the state store, after each operator transaction is sent and before its receipt — each
 * restart recovering from the previous crash; a second service does the same along the rollback-and-refund path.
 * At the end nothing may be leaked or started twice, one refund per service, no event missed, and each ledger must
 * equal what the chain paid out. The suite's figures (these kills, test/faults/reorgs.test.ts and rpc.test.ts) end in
 * one line: `faults: kills=N reorgs=N rpc_faults=N leaked=0 duplicates=0 double_refunds=0 missed_events=0
 * ledger_mismatch=0`.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { processesOf, startChild, startStack, waitFor, type Stack } from '../helpers/stack.js'
import { recordFigures } from './figures.js'

type Step = { point: string; drive?: (s: Stack, serviceId: bigint) => Promise<void> }

const PERIOD = 600n // seconds the deposit pays for (1000 base units per second)
const TTL = 7200n
const TOP_UP = 20n * PERIOD * 1000n // pays past the TTL: some of it is refunded at the end

/** The instants of a served service's life, in the order the daemon reaches them. */
const LIFE: Step[] = [
  // heard, placed, provisioned, activated
  { point: 'store.mid-write' },
  { point: 'intake.committed' },
  { point: 'quote.decided' },
  { point: 'deploy.intent-recorded' },
  { point: 'local.intent-recorded' },
  { point: 'local.spawned-unrecorded' },
  { point: 'deploy.healthy' },
  { point: 'activate.intent-recorded' },
  { point: 'tx.activate.sent' },
  { point: 'activate.confirmed' },
  // the payment runs out: scale to zero
  { point: 'scale.zero-intent', drive: async (s, id) => {
    await waitFor('active', () => s.service(id)?.state === 'active', 60_000)
    await s.travel(PERIOD + 60n)
  } },
  { point: 'scale.zero-done' },
  // a top-up: back from zero
  { point: 'scale.up-intent', drive: async (s, id) => {
    await waitFor('scaled-to-zero', () => s.service(id)?.state === 'scaled-to-zero', 60_000)
    await s.chain.customer.topUp(id, TOP_UP)
  } },
  { point: 'scale.up-done' },
  // the TTL is reached with money left: destroy, withdraw what was earned, refund the rest
  { point: 'terminate.destroy-intent', drive: async (s, id) => {
    await waitFor('active again', () => s.service(id)?.state === 'active', 60_000)
    await s.travel(TTL)
  } },
  { point: 'terminate.destroyed' },
  { point: 'terminate.withdraw-intent' },
  { point: 'tx.withdraw.sent' },
  { point: 'terminate.withdrawn' },
  { point: 'terminate.refund-intent' },
  { point: 'tx.refund.sent' },
  { point: 'terminate.refunded' },
]

/** The instants of a request that cannot be served (its artifact's sha256 is wrong): rolled back and refunded. */
const ROLLBACK: Step[] = [
  { point: 'deploy.rollback-recorded' },
  { point: 'refund.destroy-intent' },
  { point: 'refund.destroyed' },
  { point: 'refund.refund-intent' },
  { point: 'tx.refund.sent' },
  { point: 'refund.refunded' },
]

const figures = { kills: 0, leaked: 0, duplicates: 0, double_refunds: 0, missed_events: 0, ledger_mismatch: 0 }
const points = new Set<string>()

describe('faults: SIGKILL at chosen instants', () => {
  let stack: Stack
  let child: ReturnType<typeof startChild> | undefined
  beforeAll(async () => {
    stack = await startStack({ loopMs: 300, attempts: 1 })
    stack.doc.log = { level: 'info' }
    // native sources only: no podman probe on each of the ~30 restarts
    ;((stack.doc.providers as Record<string, Record<string, unknown>>).local!).containers = 'off'
  })
  afterAll(async () => {
    child?.child.kill('SIGKILL')
    await stack?.stop()
    recordFigures('kills', { ...figures, kills: points.size })
  })

  /** Run a daemon that kills itself at `step.point`; drive the chain meanwhile; wait for the kill. */
  async function killAt(step: Step, serviceId: bigint) {
    process.env.BPO_FAULT = step.point
    child = startChild(stack)
    delete process.env.BPO_FAULT
    const running = child
    let code: number | null
    try {
      const driven = step.drive?.(stack, serviceId)
      code = await Promise.race([running.exited, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`never reached ${step.point}:\n${running.output().slice(-3000)}`)), 90_000))])
      await driven
    } finally {
      // a daemon that never reached the point must not go on serving the next test's services
      running.child.kill('SIGKILL')
      child = undefined
    }
    expect(code, running.output().slice(-2000)).toBeNull() // killed by the signal: no exit code
    expect(running.output()).toContain(`BPO_FAULT: killed at ${step.point}#1`)
    figures.kills++
    points.add(step.point)
  }

  /** A clean daemon finishes the service; then the books are checked against the chain. */
  async function finish(serviceId: bigint, end: 'closed' | 'refunded', paid: bigint) {
    const dep = `bp-${stack.chain.chainId}-${serviceId}`
    child = startChild(stack)
    await waitFor(end, () => stack.service(serviceId)?.state === end, 90_000)
    await waitFor('no processes', () => processesOf(dep, stack.operatorId).length === 0, 30_000).catch(() => undefined)
    figures.leaked += processesOf(dep, stack.operatorId).length
    const refunds = await stack.refunds(serviceId)
    figures.double_refunds += Math.max(0, refunds.length - 1)
    const withdrawn = (await stack.events(serviceId, 'Withdrawn')).reduce((a, e) => a + (e.amount as bigint), 0n)
    const refunded = refunds.reduce((a, r) => a + r.amount, 0n)
    const settled = await waitFor('ledger = chain payouts', () => {
      const l = stack.service(serviceId)?.ledger
      return l && l.withdrawn === withdrawn.toString() && l.refunded === refunded.toString() && l
    }, 30_000).catch(() => undefined)
    if (!settled) figures.ledger_mismatch++
    if (stack.service(serviceId)!.ledger.paid !== paid.toString()) figures.missed_events++
    // everything paid in went out again, once: earned to the operator, the rest back to the customer
    expect(withdrawn + refunded).toBe(paid)
    expect(refunds).toHaveLength(1)
    child.child.kill('SIGTERM')
    expect(await child.exited).toBe(0)
    child = undefined
  }

  test('behavior: killed at every instant of a service\'s life — served once, scaled, back, ended once, refunded once', { timeout: 900_000 }, async () => {
    const { chain } = stack
    const blueprintId = await stack.registerDemo({ name: 'fault-life' })
    await chain.customer.mint(PERIOD * 1000n + TOP_UP)
    const { serviceId } = await chain.customer.requestService({ blueprintId, operator: chain.operatorAddress, tier: 0, ttlSeconds: TTL, deposit: PERIOD * 1000n })
    const dep = `bp-${chain.chainId}-${serviceId}`
    for (const step of LIFE) {
      await killAt(step, serviceId)
      // a replica never runs twice, whatever instant the daemon died at
      const n = processesOf(dep, stack.operatorId).length
      figures.duplicates += Math.max(0, n - 1)
      expect(n).toBeLessThanOrEqual(1)
    }
    expect(await stack.events(serviceId, 'ServiceActivated')).toHaveLength(1)
    await finish(serviceId, 'closed', PERIOD * 1000n + TOP_UP)
    expect(stack.service(serviceId)!.reason).toBe('TTL_REACHED')
    expect(stack.service(serviceId)!.history.filter((h) => h.to === 'active').length).toBeGreaterThanOrEqual(2) // served, then back from zero
  })

  test('behavior: killed at every instant of a rollback — nothing runs, one refund of the whole deposit', { timeout: 600_000 }, async () => {
    const { chain } = stack
    const blueprintId = await stack.registerDemo({ name: 'fault-rollback', sha256: 'ab'.repeat(32) })
    await chain.customer.mint(PERIOD * 1000n)
    const { serviceId } = await chain.customer.requestService({ blueprintId, operator: chain.operatorAddress, tier: 0, ttlSeconds: TTL, deposit: PERIOD * 1000n })
    for (const step of ROLLBACK) await killAt(step, serviceId)
    expect(await stack.events(serviceId, 'ServiceActivated')).toHaveLength(0)
    await finish(serviceId, 'refunded', PERIOD * 1000n)
    expect((await stack.refunds(serviceId))[0]!.reason).toBe('ARTIFACT_DIGEST_MISMATCH')
  })

  test('behavior: ≥ 20 distinct instants were killed, and nothing leaked, ran twice, was refunded twice or missed', () => {
    expect(points.size).toBeGreaterThanOrEqual(20)
    expect({ leaked: figures.leaked, duplicates: figures.duplicates, double_refunds: figures.double_refunds, missed_events: figures.missed_events, ledger_mismatch: figures.ledger_mismatch }).toEqual({
      leaked: 0,
      duplicates: 0,
      double_refunds: 0,
      missed_events: 0,
      ledger_mismatch: 0,
    })
  })
})
