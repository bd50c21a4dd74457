import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { afterAll, describe, expect, test } from 'vitest'
import type { ChainEvent } from '../chain/events.js'
import { createTestCommon } from '../core/common.js'
import { createEventBus, watchStages, type DaemonEvent } from './events.js'
import { applyEvents } from './intake.js'
import { transition } from './state.js'
import { createStore } from './store.js'

const operator = `0x${'11'.repeat(20)}` as const
const request = (id: bigint, logIndex: number): ChainEvent => ({
  chainId: 31337, blockNumber: 1n, blockHash: `0x${'aa'.repeat(32)}`, txHash: `0x${'bb'.repeat(32)}`, logIndex,
  type: 'ServiceInitiated', serviceId: id, blueprintId: 1n, customer: `0x${'22'.repeat(20)}`, operator,
  tier: 0, preferences: { ok: true, value: {} }, ttlSeconds: 60n, deposit: 5_000_000n, ratePerHour: 3_600_000n,
})
const turn = () => new Promise((r) => setImmediate(r))

describe('watchStages', () => {
  const { common, shutdown } = createTestCommon()
  const dir = mkdtempSync(join(tmpdir(), 'bpo-stages-'))
  afterAll(async () => {
    await shutdown()
    rmSync(dir, { recursive: true, force: true })
  })

  test('behavior: each committed transition is emitted once, in order per service, for the services the commits changed', async () => {
    const bus = createEventBus(common.logger)
    const store = await createStore(common, { file: join(dir, 'state.sqlite'), operatorId: 'op-stages', chainId: 31337 })
    const log = { operator, chainId: 31337, logger: pino({ level: 'silent' }) }
    await store.update((st) => applyEvents(st, [request(1n, 0)], log))
    expect(watchStages(store, bus)).toBe(store)
    const seen: DaemonEvent[] = []
    bus.subscribe((e) => void seen.push(e))

    await store.update((st) => applyEvents(st, [request(2n, 1)], log))
    await Promise.all([
      store.update((st) => transition(st.services['1']!, 'provisioning', 'placed')),
      store.update((st) => transition(st.services['2']!, 'provisioning', 'placed')),
      store.update((st) => transition(st.services['1']!, 'active', 'healthy')),
    ])
    await turn()
    const seenFrom2 = String(store.read().services['2']!.history[0]!.from)
    const stages = seen.flatMap((e) => (e.type === 'stage' ? [`${e.serviceId}:${e.from}->${e.to}`] : []))
    // per service in commit order (services among themselves in no promised order); service 1's request, committed
    // before watching began, never
    expect(stages.filter((s) => s.startsWith('1:'))).toEqual(['1:requested->provisioning', '1:provisioning->active'])
    expect(stages.filter((s) => s.startsWith('2:'))).toEqual([`2:${seenFrom2}->requested`, '2:requested->provisioning'])

    // an update that changes nothing emits nothing
    const before = seen.length
    await store.update(() => undefined)
    await turn()
    expect(seen.length).toBe(before)
    await store.close()
  })
})
