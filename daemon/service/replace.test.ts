/**
 * A service sent back to placement with a destroy intent (its grid deployment was lost, daemon/tfchainIntake.ts):
 * the requested step destroys the old deployment on its last target before it quotes again, against a real store.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import type { ChainEvent } from '../../chain/events.js'
import { createTestCommon } from '../../core/common.js'
import { BaseError } from '../../core/errors.js'
import { parseConfig } from '../config.js'
import { applyEvents } from '../intake.js'
import { createCapacityBook } from '../placement/capacity.js'
import type { Target } from '../ports.js'
import { transition } from '../state.js'
import { createStore, type Store } from '../store.js'
import { applyTfchainEvents, GRID_DEPLOYMENT_LOST } from '../tfchainIntake.js'
import { createServiceMetrics, type ServiceContext } from './context.js'
import { step } from './step.js'

const operator = `0x${'11'.repeat(20)}` as const
const { common, shutdown } = createTestCommon()
const logger = pino({ level: 'silent' })
let dir: string
let store: Store

const initiated = (id: bigint): ChainEvent => ({
  chainId: 31337, blockNumber: BigInt(id), blockHash: `0x${'aa'.repeat(32)}`, txHash: `0x${id.toString(16).padStart(64, '0')}`, logIndex: 0,
  type: 'ServiceInitiated', serviceId: id, blueprintId: 1n, customer: `0x${'22'.repeat(20)}`, operator,
  tier: 0, preferences: { ok: true, value: {} }, ttlSeconds: 3600n, deposit: 5_000_000n, ratePerHour: 3_600_000n,
})

/** Service `id` active on the grid with one replica, then lost: its node went down. */
async function lostOnTheGrid(id: bigint) {
  await store.update((st) => {
    applyEvents(st, [initiated(id)], { operator, chainId: 31337, logger })
    const s = st.services[id.toString()]!
    transition(s, 'provisioning', 'test')
    transition(s, 'active', 'healthy')
    s.quote = { provider: 'threefold', target: 'threefold', region: 'be', instanceType: 'grid', hourlyUsd: '0.05', totalHourlyUsd: '0.05', replicas: 1, source: 'threefold' }
    s.replicas = 1
    s.endpoints = ['http://10.0.0.1:8080']
    applyTfchainEvents(st, [{ blockNumber: 10, blockHash: '0x01', eventIndex: 0, at: Date.now(), type: 'node-down', nodeId: 3, reason: 'deleted' }], {
      usdPerTft: '0.02',
      contracts: { '9': { contractId: '9', kind: 'node', nodeId: 3, deploymentName: `${s.deploymentId}-r0` } },
      logger,
    })
  })
}

/** What the requested step calls, in order: the grid target's destroy, then the escrow read that starts a quote. */
function contextRecording(destroy: (deploymentId: string) => Promise<void>) {
  const calls: string[] = []
  const config = parseConfig(
    {
      operator: { id: 'op-replace', data_dir: dir },
      chain: { rpc_url: 'http://127.0.0.1:1', chain_id: 31337, private_key: 'env:K', registry: operator, escrow: operator },
    },
    { env: { K: `0x${'ab'.repeat(32)}` } },
  )
  const target = {
    name: 'threefold',
    provisioner: {
      async destroy(deploymentId: string) {
        calls.push(`destroy ${deploymentId}`)
        await destroy(deploymentId)
      },
    },
  } as unknown as Target
  const escrow = {
    async getService(id: bigint) {
      calls.push(`getService ${id}`)
      throw new BaseError('chain unreachable', { code: 'RPC_UNAVAILABLE', retryable: true })
    },
  }
  const ctx = {
    common,
    log: common.logger,
    config,
    store,
    escrow,
    targets: { byName: (n: string) => (n === 'threefold' ? target : undefined), list: () => [target] },
    book: createCapacityBook(),
    m: createServiceMetrics(common),
    stopped: () => false,
    kick: () => {},
  } as unknown as ServiceContext
  return { ctx, calls }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'bpo-replace-'))
  store = await createStore(common, { file: join(dir, 'state.sqlite'), operatorId: 'op-replace', chainId: 31337 })
})
afterAll(async () => {
  await store?.close()
  if (dir) rmSync(dir, { recursive: true, force: true })
  await shutdown()
})

describe('requested after a lost grid deployment', () => {
  test('default: the old deployment is destroyed and the intent cleared before placement quotes again', async () => {
    await lostOnTheGrid(5n)
    expect(store.read().services['5']).toMatchObject({ state: 'requested', intent: { op: 'destroy' }, history: expect.arrayContaining([expect.objectContaining({ cause: GRID_DEPLOYMENT_LOST })]) })
    const { ctx, calls } = contextRecording(async () => {})
    await step(ctx, '5')
    expect(calls).toEqual(['destroy bp-31337-5', 'getService 5'])
    const s = store.read().services['5']!
    expect(s.intent).toBeUndefined()
    expect(s).toMatchObject({ state: 'requested', replicas: 0, endpoints: [] })
  })

  test('error: a destroy that fails keeps the intent and quotes nothing (the next tick destroys again)', async () => {
    await lostOnTheGrid(6n)
    const { ctx, calls } = contextRecording(async () => {
      throw new BaseError('destroy timed out', { code: 'TIMEOUT', retryable: true })
    })
    await expect(step(ctx, '6')).rejects.toMatchObject({ code: 'TIMEOUT' })
    expect(calls).toEqual(['destroy bp-31337-6'])
    expect(store.read().services['6']).toMatchObject({ state: 'requested', intent: { op: 'destroy' }, replicas: 1 })
  })
})
