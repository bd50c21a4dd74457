/**
 * missingOnChain against a real store: a service the chain does not return is counted missing read by read, with a
 * retryable SERVICE_MISSING, and is left in its state until it has been missing long enough.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import type { ChainEvent } from '../../chain/events.js'
import { createTestCommon } from '../../core/common.js'
import { parseConfig } from '../config.js'
import { applyEvents } from '../intake.js'
import { createCapacityBook } from '../placement/capacity.js'
import { createStore, type Store } from '../store.js'
import { createServiceMetrics, type ServiceContext } from './context.js'
import { missingOnChain } from './vanished.js'

const operator = `0x${'11'.repeat(20)}` as const
const { common, shutdown } = createTestCommon()
let dir: string
let store: Store

const initiated = (id: bigint): ChainEvent => ({
  chainId: 31337, blockNumber: 1n, blockHash: `0x${'aa'.repeat(32)}`, txHash: `0x${'bb'.repeat(32)}`, logIndex: 0,
  type: 'ServiceInitiated', serviceId: id, blueprintId: 1n, customer: `0x${'22'.repeat(20)}`, operator,
  tier: 0, preferences: { ok: true, value: {} }, ttlSeconds: 60n, deposit: 5_000_000n, ratePerHour: 3_600_000n,
})

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'bpo-vanished-'))
  store = await createStore(common, { file: join(dir, 'state.sqlite'), operatorId: 'op-vanish', chainId: 31337 })
  await store.update((st) => applyEvents(st, [initiated(5n)], { operator, chainId: 31337, logger: pino({ level: 'silent' }) }))
})
afterAll(async () => {
  await store?.close()
  if (dir) rmSync(dir, { recursive: true, force: true })
  await shutdown()
})

describe('missingOnChain', () => {
  test('error: each read that misses the service is a retryable SERVICE_MISSING, counted; the service stays as it was', async () => {
    const config = parseConfig(
      {
        operator: { id: 'op-vanish', data_dir: dir },
        chain: { rpc_url: 'http://127.0.0.1:1', chain_id: 31337, private_key: 'env:K', registry: operator, escrow: operator },
        loop: { vanished_after_ms: 600_000 },
      },
      { env: { K: `0x${'ab'.repeat(32)}` } },
    )
    // what missingOnChain reads and writes: the store, the capacity book, the config's vanished_after_ms, the log
    const ctx = { common, log: common.logger, config, store, book: createCapacityBook(), m: createServiceMetrics(common) } as Partial<ServiceContext> as ServiceContext
    for (const checks of [1, 2, 3]) {
      await expect(missingOnChain(ctx, '5')).rejects.toMatchObject({ code: 'SERVICE_MISSING', retryable: true, shortMessage: 'service 5 is not on chain' })
      expect(store.read().services['5']!.missing?.checks).toBe(checks)
    }
    // three reads in a row, but not yet missing for vanished_after_ms: a lagging node is still the likelier story
    expect(store.read().services['5']!.state).toBe('requested')
    expect(store.read().services['5']!.reason).toBeUndefined()
  })
})
