import { describe, expect, test } from 'vitest'
import { pino } from 'pino'
import type { TfchainContract, TfchainEvent } from '../chain/substrate/events.js'
import { applyEvents } from './intake.js'
import { emptyState, transition, transitions, type ServiceState, type State } from './state.js'
import { applyTfchainEvents, GRID_DEPLOYMENT_LOST, replicaOf } from './tfchainIntake.js'

const logger = pino({ level: 'silent' })
const operator = '0x' + '11'.repeat(20)
const T0 = Date.parse('2026-12-01T00:00:00Z')
const HOUR = 3_600_000

/** A state with service 7 (`bp-31337-7`) active on `provider` with two replicas since T0, and service 8 requested. */
function stateWith(provider = 'threefold'): State {
  const st = emptyState('op', 31337)
  const meta = (n: number, serviceId: bigint) => ({ chainId: 31337, blockNumber: BigInt(n), blockHash: `0x${'aa'.repeat(32)}` as const, txHash: `0x${n.toString(16).padStart(64, '0')}` as `0x${string}`, logIndex: 0 })
  for (const [n, id] of [[1, 7n], [2, 8n]] as const)
    applyEvents(st, [{ ...meta(n, id), type: 'ServiceInitiated', serviceId: id, blueprintId: 1n, customer: `0x${'22'.repeat(20)}`, operator: operator as `0x${string}`, tier: 0, preferences: { ok: true, value: {} }, ttlSeconds: 3600n, deposit: 1_000_000n, ratePerHour: 3_600_000n }], { operator, chainId: 31337, logger, now: new Date(T0) })
  const s = st.services['7']!
  transition(s, 'provisioning', 'test', { now: new Date(T0) })
  transition(s, 'active', 'healthy', { now: new Date(T0) })
  s.quote = { provider, target: provider, region: 'be', instanceType: 'grid-2c4g', hourlyUsd: '0.05', totalHourlyUsd: '0.1', replicas: 2, source: 'threefold' }
  s.spec = { vcpu: 2, memoryGiB: 4, storageGiB: 20, replicas: 2 } as never
  s.replicas = 2
  s.costSince = new Date(T0).toISOString()
  return st
}

const contracts: Record<string, TfchainContract> = {
  '40': { contractId: '40', kind: 'node', nodeId: 11, deploymentName: 'bp-31337-7-r0' },
  '41': { contractId: '41', kind: 'node', nodeId: 12, deploymentName: 'bp-31337-7-r1' },
  '50': { contractId: '50', kind: 'node', nodeId: 11, deploymentName: 'someone-else' },
  '51': { contractId: '51', kind: 'name', name: 'bp-31337-7' },
}
let idx = 0
const at = (blockNumber: number, o: { at?: number; eventIndex?: number } = {}) => ({ blockNumber, blockHash: `0x${'bb'.repeat(32)}`, eventIndex: o.eventIndex ?? idx++, at: o.at ?? T0 + 2 * HOUR })
const billed = (block: number, contractId: string, amount: bigint, o: { eventIndex?: number; name?: string | null } = {}): TfchainEvent => ({
  ...at(block, o),
  type: 'contract-billed',
  contractId,
  amountBilled: amount,
  billedAt: T0 + HOUR,
  discountLevel: 'None',
  ...(o.name !== null && { deploymentName: o.name ?? contracts[contractId]?.deploymentName }),
})
const ctx = (o: { now?: number; contracts?: Record<string, TfchainContract> } = {}) => ({ usdPerTft: '0.02', contracts: o.contracts ?? contracts, logger, now: new Date(o.now ?? T0 + 2 * HOUR) })

describe('replicaOf', () => {
  test('default: `<deploymentId>-r<i>` names a replica; other names none', () => {
    expect(replicaOf('bp-1-5-r12')).toEqual({ deploymentId: 'bp-1-5', index: 12 })
    expect(replicaOf('bp-1-5')).toBeUndefined()
    expect(replicaOf(undefined)).toBeUndefined()
  })
})

describe('applyTfchainEvents', () => {
  test('default: a bill adds its TFT to ledger.gridTft and its USD at the rate given to cloudCostUsd', () => {
    const st = stateWith()
    // 25 TFT (10^7 units each) at 0.02 USD = 0.5 USD
    const touched = applyTfchainEvents(st, [billed(100, '40', 250_000_000n)], ctx())
    expect([...touched]).toEqual(['7'])
    const s = st.services['7']!
    expect(s.ledger).toMatchObject({ gridTft: '25', cloudCostUsd: '0.5' })
    expect(s.grid).toMatchObject({ bills: 1, lastEvent: expect.stringMatching(/^100:/) })
    expect(s.state).toBe('active')
  })

  test('behavior: a bill without a deployment name is matched through the watcher\'s contracts; bills of both replicas add up', () => {
    const st = stateWith()
    applyTfchainEvents(st, [billed(100, '40', 10_000_000n, { name: null }), billed(100, '41', 5_000_000n)], ctx())
    expect(st.services['7']!.ledger).toMatchObject({ gridTft: '1.5', cloudCostUsd: '0.03' })
  })

  test('behavior: at-least-once delivery counts each event once (by block and event index)', () => {
    const st = stateWith()
    const a = billed(100, '40', 10_000_000n, { eventIndex: 3 })
    const b = billed(100, '41', 10_000_000n, { eventIndex: 4 })
    applyTfchainEvents(st, [a, b], ctx())
    // the same block delivered again (a crash before the watcher's cursor was written), then the next one
    const again = applyTfchainEvents(st, [a, b], ctx())
    expect([...again]).toEqual([])
    applyTfchainEvents(st, [a, b, billed(101, '40', 10_000_000n, { eventIndex: 0 })], ctx())
    expect(st.services['7']!.ledger.gridTft).toBe('3')
    expect(st.services['7']!.grid).toMatchObject({ bills: 3, lastEvent: '101:0' })
  })

  test('behavior: contracts of no known service (another deployment, a name contract, an unknown contract) are ignored', () => {
    const st = stateWith()
    const before = JSON.stringify(st)
    const touched = applyTfchainEvents(st, [
      billed(100, '50', 10_000_000n),
      billed(100, '51', 10_000_000n),
      billed(100, '99', 10_000_000n, { name: 'bp-31337-999-r0' }),
      { ...at(100), type: 'grace-period-started', contractId: '50', nodeId: 11, sinceBlock: 100 },
      { ...at(100), type: 'grace-period-started', contractId: '77', nodeId: 11, sinceBlock: 100 },
      { ...at(100), type: 'contract-cancelled', contractId: '50', kind: 'node', nodeId: 11, deploymentName: 'someone-else' },
      { ...at(100), type: 'node-down', nodeId: 13, reason: 'deleted' },
      { ...at(100), type: 'node-up', nodeId: 11 },
      { ...at(100), type: 'contract-created', contract: contracts['40']! },
    ], ctx())
    expect([...touched]).toEqual([])
    expect(JSON.stringify(st)).toBe(before)
  })

  test('behavior: a grace period on an active grid service sends it back to placement with GRID_DEPLOYMENT_LOST and a destroy intent', () => {
    const st = stateWith()
    applyTfchainEvents(st, [{ ...at(100), type: 'grace-period-started', contractId: '41', nodeId: 12, sinceBlock: 100 }], ctx())
    const s = st.services['7']!
    expect(s.state).toBe('requested')
    expect(s.history.at(-1)).toMatchObject({ from: 'active', to: 'requested', cause: GRID_DEPLOYMENT_LOST, detail: expect.stringContaining('grace period of contract 41') })
    expect(s.intent).toMatchObject({ op: 'destroy', detail: expect.stringContaining('re-placement') })
    expect(s.grid).toMatchObject({ gracePeriod: { contractId: '41', sinceBlock: 100 }, lost: { why: expect.stringContaining('grace period') } })
    // replica-hours up to the loss are counted; the grid's cost comes from its bills, not the catalog estimate
    expect(s.ledger).toMatchObject({ replicaHours: '2', cloudCostUsd: '0' })
  })

  test('behavior: a node down (deleted or silent) moves every service with a contract on it', () => {
    const st = stateWith()
    applyTfchainEvents(st, [{ ...at(100), type: 'node-down', nodeId: 11, reason: 'uptime-stale', lastUptimeAt: T0 }], ctx())
    expect(st.services['7']!.history.at(-1)).toMatchObject({ to: 'requested', cause: GRID_DEPLOYMENT_LOST, detail: 'node 11 stopped reporting uptime' })
    const other = stateWith()
    applyTfchainEvents(other, [{ ...at(100), type: 'node-down', nodeId: 12, reason: 'deleted' }], ctx())
    expect(other.services['7']!.history.at(-1)).toMatchObject({ to: 'requested', cause: GRID_DEPLOYMENT_LOST, detail: 'node 12 deleted' })
  })

  test('behavior: a contract cancelled outside the daemon moves the service; the daemon\'s own cancellations do not', () => {
    const cancel = (contractId: string, when = T0 + 2 * HOUR): TfchainEvent => ({ ...at(100, { at: when }), type: 'contract-cancelled', contractId, kind: 'node', nodeId: 11, deploymentName: contracts[contractId]!.deploymentName! })
    const outside = stateWith()
    applyTfchainEvents(outside, [cancel('40')], ctx())
    expect(outside.services['7']!.history.at(-1)).toMatchObject({ to: 'requested', cause: GRID_DEPLOYMENT_LOST, detail: 'contract 40 cancelled outside the daemon' })

    // a scale or destroy in flight
    const inFlight = stateWith()
    inFlight.services['7']!.intent = { op: 'scale', at: new Date(T0 + HOUR).toISOString(), attempt: 1, detail: '1' }
    applyTfchainEvents(inFlight, [cancel('40')], ctx())
    expect(inFlight.services['7']!.state).toBe('active')
    // a replica the daemon scaled away, recorded before its cancel; the event arrives when the service is at rest again,
    // hours of chain time later (the record does not depend on clocks)
    const scaledDown = stateWith()
    scaledDown.services['7']!.replicas = 1
    applyTfchainEvents(scaledDown, [cancel('41', T0 + 30 * HOUR)], { ...ctx(), ownCancels: new Set(['41']) })
    expect(scaledDown.services['7']!.state).toBe('active')
    expect(scaledDown.services['7']!.grid?.lastEvent).toMatch(/^100:/)
    // the same replica gone without a record: the grid (or someone else) cancelled it
    const notRecorded = stateWith()
    notRecorded.services['7']!.replicas = 1
    applyTfchainEvents(notRecorded, [cancel('41')], { ...ctx(), ownCancels: new Set(['40']) })
    expect(notRecorded.services['7']!.history.at(-1)).toMatchObject({ to: 'requested', cause: GRID_DEPLOYMENT_LOST, detail: 'contract 41 cancelled outside the daemon' })
    // a service not at rest (scaled to zero) is never moved by a cancellation
    const zero = stateWith()
    transition(zero.services['7']!, 'scaled-to-zero', 'payment expired', { now: new Date(T0 + HOUR) })
    applyTfchainEvents(zero, [cancel('40')], ctx())
    expect(zero.services['7']!.state).toBe('scaled-to-zero')
  })

  test('behavior: a grace period that ends is recorded; a service already moved stays moved', () => {
    const st = stateWith()
    applyTfchainEvents(st, [
      { ...at(100), type: 'grace-period-started', contractId: '40', nodeId: 11, sinceBlock: 100 },
      { ...at(101), type: 'grace-period-ended', contractId: '40', nodeId: 11 },
    ], ctx())
    const s = st.services['7']!
    expect(s.state).toBe('requested')
    expect(s.grid?.gracePeriod).toBeUndefined()
    expect(s.grid?.graceEnded).toMatchObject({ contractId: '40' })
    expect(s.history.filter((h) => h.cause === GRID_DEPLOYMENT_LOST)).toHaveLength(1)
  })

  test('behavior: services not active on the grid are never moved (other states, other providers, work in flight); their bills still count', () => {
    const states: ServiceState[] = ['requested', 'provisioning', 'scaled-to-zero', 'terminating', 'closed', 'refunding', 'refunded']
    for (const state of states) {
      const st = stateWith()
      const s = st.services['7']!
      s.state = state
      applyTfchainEvents(st, [
        billed(100, '40', 10_000_000n),
        { ...at(100), type: 'grace-period-started', contractId: '40', nodeId: 11, sinceBlock: 100 },
        { ...at(100), type: 'node-down', nodeId: 12, reason: 'deleted' },
        { ...at(100), type: 'contract-cancelled', contractId: '41', kind: 'node', nodeId: 12, deploymentName: 'bp-31337-7-r1' },
      ], ctx())
      expect(s.state, state).toBe(state)
      expect(s.history.some((h) => h.cause === GRID_DEPLOYMENT_LOST), state).toBe(false)
      expect(s.ledger.gridTft, state).toBe('1')
    }
    const hetzner = stateWith('hetzner')
    applyTfchainEvents(hetzner, [{ ...at(100), type: 'node-down', nodeId: 11, reason: 'deleted' }], ctx())
    expect(hetzner.services['7']!.state).toBe('active')
    const busy = stateWith()
    busy.services['7']!.intent = { op: 'scale', at: new Date(T0).toISOString(), attempt: 1 }
    applyTfchainEvents(busy, [{ ...at(100), type: 'node-down', nodeId: 11, reason: 'deleted' }], ctx())
    expect(busy.services['7']!.state).toBe('active')
  })

  test('default: active → requested is a legal transition (re-placement), scaled-to-zero → requested is not', () => {
    expect(transitions.active).toContain('requested')
    expect(transitions['scaled-to-zero']).not.toContain('requested')
  })
})
