/**
 * The daemon's TFChain follow against a real TFChain runtime (spec 61) under chopsticks, into a real store: the
 * twin's node contracts named like grid VMs (`<deploymentId>-r0`) are billed into their services' ledgers at the
 * chain's own TFT/USD rate, once even when a block is delivered again, and a grace period or a node gone silent sends
 * an active grid service back to placement with a destroy intent.
 */
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import type { ChainEvent } from '../chain/events.js'
import { createTestCommon } from '../core/common.js'
import { usd } from '../core/money.js'
import { fetchTfchain } from '../pricing/sources/tfchain.js'
import { cachedTftUsd } from './tftUsd.js'
import { tfchainSpec61Types } from '../test/pricing/chopsticks.js'
import { setupGrid, startTfchainDev, type TfchainDev } from '../test/helpers/tfchain.js'
import { applyEvents } from './intake.js'
import { transition } from './state.js'
import { createStore, type Store } from './store.js'
import { createTfchainFollow, TFCHAIN_STALE_MS, tfchainCheck } from './tfchainFollow.js'
import { GRID_DEPLOYMENT_LOST } from './tfchainIntake.js'

const operator = `0x${'11'.repeat(20)}` as const
const { common, shutdown } = createTestCommon()
let dev: TfchainDev
let grid: Awaited<ReturnType<typeof setupGrid>>
let dir: string
let store: Store
const kicked: string[] = []

const initiated = (id: bigint): ChainEvent => ({
  chainId: 31337, blockNumber: BigInt(id), blockHash: `0x${'aa'.repeat(32)}`, txHash: `0x${id.toString(16).padStart(64, '0')}`, logIndex: 0,
  type: 'ServiceInitiated', serviceId: id, blueprintId: 1n, customer: `0x${'22'.repeat(20)}`, operator,
  tier: 0, preferences: { ok: true, value: {} }, ttlSeconds: 3600n, deposit: 5_000_000n, ratePerHour: 3_600_000n,
})

const follow = () =>
  createTfchainFollow(common, {
    url: dev.chain.wsUrl,
    types: tfchainSpec61Types,
    twinId: grid.aliceTwin,
    dataDir: dir,
    store,
    // the rate TFChain bills with, read from the same chain
    usdPerTft: cachedTftUsd(dev.chain.wsUrl, async () => (await fetchTfchain({ url: dev.chain.wsUrl, types: tfchainSpec61Types, timeoutMs: 20_000 })).usdPerTft),
    kick: (id) => kicked.push(id),
    // this suite moves the clock by days: a node counts as down only where a test says so
    nodeDownAfterMs: 20 * 86_400_000,
  })
const tx = () => dev.api.tx.smartContractModule!

/** Bill `contractId` in the next block whatever the runtime's billing frequency, `days` later. */
async function billNext(contractId: string, days: number) {
  const head = (await dev.api.rpc.chain.getHeader()).number.toNumber()
  const key = (i: number) => dev.api.query.smartContractModule!.contractsToBillAt!.key(i)
  const ids = dev.api.createType('Vec<u64>', [BigInt(contractId)]).toHex()
  await dev.chain.rpc('dev_setStorage', [[...new Set([5, 10, 20, 50, 100, 300, 600, 3600].map((f) => (head + 1) % f))].map((i) => [key(i), ids])])
  await dev.timeTravel((await dev.now()) + days * 86_400_000)
  return dev.block()
}

let contractOf: Record<string, string> = {}

beforeAll(async () => {
  dev = await startTfchainDev()
  grid = await setupGrid(dev)
  dir = mkdtempSync(join(tmpdir(), 'bpo-tfchain-follow-'))
  store = await createStore(common, { file: join(dir, 'state.sqlite'), operatorId: 'op-grid', chainId: 31337 })
  // services 1 and 2, active on the grid with one VM each
  await store.update((st) => {
    applyEvents(st, [initiated(1n), initiated(2n)], { operator, chainId: 31337, logger: pino({ level: 'silent' }) })
    for (const id of ['1', '2']) {
      const s = st.services[id]!
      transition(s, 'provisioning', 'test')
      transition(s, 'active', 'healthy')
      s.quote = { provider: 'threefold', target: 'threefold', region: 'BE', instanceType: 'node-1', hourlyUsd: '0.05', totalHourlyUsd: '0.05', replicas: 1, source: 'threefold' }
      s.replicas = 1
    }
  })
}, 120_000)
afterAll(async () => {
  await dev?.stop()
  await store?.close()
  if (dir) rmSync(dir, { recursive: true, force: true })
  await shutdown()
})

describe('createTfchainFollow (chopsticks, spec 61, real store)', () => {
  test('default: a node contract\'s bill goes into its service\'s ledger in TFT and in USD at the chain\'s rate', async () => {
    const w = follow()
    expect(w.lastDeliveryAt()).toBeUndefined()
    await w.pollOnce() // no cursor: starts at the head
    const vm = (name: string) => JSON.stringify({ type: 'vm', name, projectName: name.replace(/-r\d+$/, '') })
    await dev.block([
      await dev.sign(dev.alice, tx().createNodeContract!(grid.nodeId, vm('bp-31337-1-r0'), 'hash-1', 0)),
      await dev.sign(dev.alice, tx().createNodeContract!(grid.nodeId, vm('bp-31337-2-r0'), 'hash-2', 0)),
      await dev.sign(dev.alice, tx().createNodeContract!(grid.nodeId, vm('someone-else-r0'), 'hash-3', 0)),
    ])
    await w.pollOnce()
    contractOf = Object.fromEntries(Object.values(w.cursor()!.contracts).map((c) => [c.deploymentName!, c.contractId]))
    expect(Object.keys(contractOf).sort()).toEqual(['bp-31337-1-r0', 'bp-31337-2-r0', 'someone-else-r0'])
    const used = { hru: 0, sru: 50 * 1024 ** 3, cru: 2, mru: 4 * 1024 ** 3 }
    await dev.block([await dev.sign(dev.bob, tx().reportContractResources!([{ contract_id: BigInt(contractOf['bp-31337-1-r0']!), used }]))])
    await w.pollOnce()
    kicked.length = 0
    // at-least-once: keep the cursor from before the bill, to deliver the bill's block again below
    copyFileSync(join(dir, 'tfchain', 'cursor.json'), join(dir, 'cursor-before-bill.json'))
    const billBlock = await billNext(contractOf['bp-31337-1-r0']!, 1)
    const billed = billBlock.events.find((e) => e.name === 'smartContractModule.ContractBilled')
    expect(billed).toBeDefined()
    await w.pollOnce()
    const bill = billed!.data[0] as Record<string, number | string>
    const amount = BigInt(bill.amount_billed ?? bill.amountBilled!)
    expect(amount).toBeGreaterThan(0n)
    const s = store.read().services['1']!
    const tft = usd(amount.toString()).div(10_000_000)
    expect(s.ledger.gridTft).toBe(tft.toFixed())
    // 0x52080000 in U16F16: 0.032501220703125 USD per TFT
    expect(s.ledger.cloudCostUsd).toBe(tft.mul('0.032501220703125').toDecimalPlaces(12).toFixed())
    expect(s.state).toBe('active')
    expect(kicked).toEqual(['1'])
    expect(tfchainCheck({ leading: true, lastDeliveryAt: w.lastDeliveryAt(), now: Date.now() })).toMatchObject({ name: 'tfchain-watcher', ok: true, critical: false })
    expect(store.read().services['2']!.ledger.gridTft).toBeUndefined()
    await w.stop()

    // the same block delivered again (a crash between the state write and the cursor's): counted once
    copyFileSync(join(dir, 'cursor-before-bill.json'), join(dir, 'tfchain', 'cursor.json'))
    const again = follow()
    expect(await again.pollOnce()).toMatchObject({ delivered: 1 })
    expect(store.read().services['1']!.ledger).toMatchObject({ gridTft: tft.toFixed(), cloudCostUsd: s.ledger.cloudCostUsd })
    expect(store.read().services['1']!.grid?.bills).toBe(1)
    await again.stop()
  })

  test('behavior: a bill the twin cannot pay (grace period) sends the active grid service back to placement', async () => {
    const w = follow()
    await w.pollOnce()
    const used = { hru: 0, sru: 50 * 1024 ** 3, cru: 2, mru: 4 * 1024 ** 3 }
    await dev.block([await dev.sign(dev.bob, tx().reportContractResources!([{ contract_id: BigInt(contractOf['bp-31337-2-r0']!), used }]))])
    await dev.fund(dev.alice.address, 10_000n)
    const r = await billNext(contractOf['bp-31337-2-r0']!, 10)
    expect(r.events.map((e) => e.name)).toContain('smartContractModule.ContractGracePeriodStarted')
    await w.pollOnce()
    const s = store.read().services['2']!
    expect(s.state).toBe('requested')
    expect(s.history.at(-1)).toMatchObject({ from: 'active', to: 'requested', cause: GRID_DEPLOYMENT_LOST, detail: expect.stringContaining(`grace period of contract ${contractOf['bp-31337-2-r0']}`) })
    expect(s.intent).toMatchObject({ op: 'destroy' })
    expect(kicked).toContain('2')
    // service 1's contract is on the same node but was not in grace: it stays
    expect(store.read().services['1']!.state).toBe('active')
    await w.stop()
  })

  test('behavior: a node silent past nodeDownAfterMs sends the grid service on it back to placement', async () => {
    const w = follow()
    await w.pollOnce()
    await dev.fund(dev.alice.address, 10_000_000_000n)
    await dev.timeTravel((await dev.now()) + 21 * 86_400_000)
    await dev.block()
    await w.pollOnce()
    const s = store.read().services['1']!
    expect(s.state).toBe('requested')
    expect(s.history.at(-1)).toMatchObject({ to: 'requested', cause: GRID_DEPLOYMENT_LOST, detail: `node ${grid.nodeId} stopped reporting uptime` })
    // already moved: the node-down does not move service 2 again
    expect(store.read().services['2']!.history.filter((h) => h.cause === GRID_DEPLOYMENT_LOST)).toHaveLength(1)
    await w.stop()
  })
})

describe('tfchainCheck', () => {
  test('behavior: not read yet or silent too long is not ready (not critical); a follower that does not lead is fine', () => {
    const now = Date.parse('2026-12-01T00:00:00Z')
    expect(tfchainCheck({ leading: true, lastDeliveryAt: undefined, now })).toMatchObject({ ok: false, critical: false, detail: expect.stringContaining('not been read yet') })
    expect(tfchainCheck({ leading: true, lastDeliveryAt: now - TFCHAIN_STALE_MS - 1, now })).toMatchObject({ ok: false, detail: expect.stringContaining('no TFChain block delivered since') })
    expect(tfchainCheck({ leading: true, lastDeliveryAt: now - TFCHAIN_STALE_MS, now })).toMatchObject({ ok: true })
    expect(tfchainCheck({ leading: false, lastDeliveryAt: undefined, now })).toMatchObject({ ok: true, detail: expect.stringContaining('another daemon leads') })
  })
})
