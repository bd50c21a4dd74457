/**
 * The TFChain watcher against a real TFChain runtime (spec 61) under chopsticks, offline: extrinsics signed with
 * dev keys go in with dev_newBlock, and the watcher reports what the operator's twin (Alice's, 1) sees.
 */
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { createTestCommon } from '../../core/common.js'
import { tfchainSpec61Types } from '../../test/pricing/chopsticks.js'
import { setupGrid, startTfchainDev, type TfchainDev } from '../../test/helpers/tfchain.js'
import { billedTft } from './billedTft.js'
import type { TfchainEvent } from './events.js'
import { createTfchainWatcher, type TfchainWatcherParameters } from './watchTfchain.js'

let dev: TfchainDev
let dir: string
const { common } = createTestCommon()
let grid: Awaited<ReturnType<typeof setupGrid>>

beforeAll(async () => {
  dev = await startTfchainDev()
  grid = await setupGrid(dev)
  dir = mkdtempSync(join(tmpdir(), 'tfwatch-'))
}, 60_000)
afterAll(async () => {
  await dev?.stop()
})

const watcher = (name: string, o: Partial<TfchainWatcherParameters> = {}) => {
  const got: TfchainEvent[] = []
  const w = createTfchainWatcher(common, {
    url: dev.chain.wsUrl,
    types: tfchainSpec61Types,
    twinId: grid.aliceTwin,
    cursorPath: join(dir, name, 'cursor.json'),
    async deliver(events) {
      got.push(...events)
    },
    ...o,
  })
  return { w, got }
}
const tx = () => dev.api.tx.smartContractModule!

describe('createTfchainWatcher (chopsticks, spec 61)', () => {
  const main = () => mainWatcher
  let mainWatcher: ReturnType<typeof watcher>

  test('default: node and name contracts of the twin are reported once, another twin\'s are not; the cursor is on disk', async () => {
    mainWatcher = watcher('main')
    const first = await main().w.pollOnce()
    expect(first.delivered).toBe(0)
    const r = await dev.block([
      await dev.sign(dev.alice, tx().createNodeContract!(grid.nodeId, 'data', 'hash-a', 0)),
      await dev.sign(dev.alice, tx().createNameContract!('bp-1')),
      await dev.sign(dev.bob, tx().createNameContract!('someone-else')),
    ])
    expect(r.included).toBe(3)
    const polled = await main().w.pollOnce()
    expect(polled.delivered).toBe(1)
    expect(main().got.map((e) => e.type)).toEqual(['contract-created', 'contract-created'])
    const [node, name] = main().got as Array<Extract<TfchainEvent, { type: 'contract-created' }>>
    expect(node!.contract).toMatchObject({ kind: 'node', nodeId: grid.nodeId, publicIps: 0 })
    expect(name!.contract).toMatchObject({ kind: 'name', name: 'bp-1' })
    expect(node!.blockNumber).toBe(r.number)
    expect(node!.blockHash).toBe(r.hash)
    const onDisk = JSON.parse(readFileSync(join(dir, 'main', 'cursor.json'), 'utf8'))
    expect(onDisk).toMatchObject({ v: 1, twinId: 1, blockNumber: r.number, blockHash: r.hash })
    expect(Object.values(onDisk.contracts).map((c) => (c as { kind: string }).kind).sort()).toEqual(['name', 'node'])
    expect(await main().w.pollOnce()).toMatchObject({ delivered: 0 })
  })

  test('behavior: cancelling a name contract is one contract-cancelled (spec 61 also emits NodeContractCanceled) with its bill', async () => {
    main().got.length = 0
    const nameId = Object.values(main().w.cursor()!.contracts).find((c) => c.kind === 'name')!.contractId
    const r = await dev.block([await dev.sign(dev.alice, tx().cancelContract!(BigInt(nameId)))])
    expect(r.events.map((e) => e.name)).toEqual(expect.arrayContaining(['smartContractModule.NameContractCanceled', 'smartContractModule.NodeContractCanceled']))
    await main().w.pollOnce()
    expect(main().got.map((e) => e.type)).toEqual(['contract-billed', 'contract-cancelled'])
    expect(main().got[1]).toMatchObject({ contractId: nameId, kind: 'name', name: 'bp-1' })
    const bill = main().got[0] as Extract<TfchainEvent, { type: 'contract-billed' }>
    expect(bill.amountBilled).toBeGreaterThan(0n)
    expect(main().w.cursor()!.contracts[nameId]).toBeUndefined()
  })

  test('behavior: a restarted watcher resumes from the cursor file without redelivering, and knows the contracts', async () => {
    await main().w.stop()
    const again = watcher('main')
    expect(await again.w.pollOnce()).toMatchObject({ delivered: 0 })
    const nodeId = Object.values(again.w.cursor()!.contracts).find((c) => c.kind === 'node')!.contractId
    await dev.block([await dev.sign(dev.alice, tx().updateNodeContract!(BigInt(nodeId), 'data2', 'hash-b'))])
    await again.w.pollOnce()
    expect(again.got).toHaveLength(1)
    expect(again.got[0]).toMatchObject({ type: 'contract-updated', state: 'created', contract: { contractId: nodeId, kind: 'node' } })
    mainWatcher = again
  })

  test('behavior: without a cursor the watcher reads the twin\'s live contracts at its start block', async () => {
    const late = watcher('late')
    await late.w.pollOnce()
    expect(Object.values(late.w.cursor()!.contracts).map((c) => c.kind)).toEqual(['node'])
    expect(late.got).toEqual([])
    await late.w.stop()
  })

  test('behavior: a node that stops reporting uptime is down, and up again when it reports', async () => {
    main().got.length = 0
    await dev.timeTravel((await dev.now()) + 3 * 3_600_000)
    await dev.block()
    await main().w.pollOnce()
    expect(main().got).toMatchObject([{ type: 'node-down', nodeId: grid.nodeId, reason: 'uptime-stale' }])
    await dev.block([await dev.sign(dev.bob, dev.api.tx.tfgridModule!.reportUptime!(1000))])
    await main().w.pollOnce()
    expect(main().got.map((e) => e.type)).toEqual(['node-down', 'node-up'])
  })

  test('behavior: a node contract\'s bill and cancellation name its deployment; billedTft converts the bill', async () => {
    main().got.length = 0
    const data = JSON.stringify({ type: 'vm', name: 'bp-9-1-r0', projectName: 'bp-9-1' })
    await dev.block([await dev.sign(dev.alice, tx().createNodeContract!(grid.nodeId, data, 'hash-c', 0))])
    await main().w.pollOnce()
    const created = main().got[0] as Extract<TfchainEvent, { type: 'contract-created' }>
    expect(created.contract).toMatchObject({ kind: 'node', deploymentName: 'bp-9-1-r0' })
    const id = created.contract.contractId
    // the node (Bob's twin) reports what the deployment uses; a day later the contract is billed for it
    const used = { hru: 0, sru: 50 * 1024 ** 3, cru: 2, mru: 4 * 1024 ** 3 }
    await dev.block([await dev.sign(dev.bob, tx().reportContractResources!([{ contract_id: BigInt(id), used }]))])
    const head = (await dev.api.rpc.chain.getHeader()).number.toNumber()
    const key = (i: number) => dev.api.query.smartContractModule!.contractsToBillAt!.key(i)
    const ids = dev.api.createType('Vec<u64>', [BigInt(id)]).toHex()
    await dev.chain.rpc('dev_setStorage', [[...new Set([5, 10, 20, 50, 100, 300, 600, 3600].map((f) => (head + 1) % f))].map((i) => [key(i), ids])])
    await dev.timeTravel((await dev.now()) + 86_400_000)
    await dev.block()
    await main().w.pollOnce()
    const bill = main().got.find((e) => e.type === 'contract-billed') as Extract<TfchainEvent, { type: 'contract-billed' }>
    expect(bill).toMatchObject({ contractId: id, deploymentName: 'bp-9-1-r0' })
    expect(bill.amountBilled).toBeGreaterThan(0n)
    const b = billedTft(bill, '0.0325')
    expect(b.deploymentId).toBe('bp-9-1')
    expect(b.tft.mul(10_000_000).toString()).toBe(bill.amountBilled.toString())
    expect(b.usd.toString()).toBe(b.tft.mul('0.0325').toString())
    main().got.length = 0
    await dev.block([await dev.sign(dev.alice, tx().cancelContract!(BigInt(id)))])
    await main().w.pollOnce()
    expect(main().got.find((e) => e.type === 'contract-cancelled')).toMatchObject({ contractId: id, kind: 'node', deploymentName: 'bp-9-1-r0' })
  })

  test('behavior: a bill the twin cannot pay starts the grace period', async () => {
    main().got.length = 0
    const r0 = await dev.block([await dev.sign(dev.alice, tx().createNameContract!('bp-2'))])
    expect(r0.included).toBe(1)
    await main().w.pollOnce()
    const id = (main().got[0] as Extract<TfchainEvent, { type: 'contract-created' }>).contract.contractId
    const head = (await dev.api.rpc.chain.getHeader()).number.toNumber()
    // bill it in the next block whatever the runtime's billing frequency, ten days later, with almost no balance
    const key = (i: number) => dev.api.query.smartContractModule!.contractsToBillAt!.key(i)
    const ids = dev.api.createType('Vec<u64>', [BigInt(id)]).toHex()
    await dev.chain.rpc('dev_setStorage', [[...new Set([5, 10, 20, 50, 100, 300, 600, 3600].map((f) => (head + 1) % f))].map((i) => [key(i), ids])])
    await dev.fund(dev.alice.address, 10_000n)
    await dev.timeTravel((await dev.now()) + 10 * 86_400_000)
    await dev.block()
    await main().w.pollOnce()
    const types = main().got.map((e) => e.type)
    expect(types).toContain('grace-period-started')
    expect(main().got.find((e) => e.type === 'grace-period-started')).toMatchObject({ contractId: id })
    await main().w.stop()
  })

  test('error: a cursor file that is not JSON is TFCHAIN_CURSOR_CORRUPT; a cursor off the chain is TFCHAIN_CHAIN_MISMATCH', async () => {
    mkdirSync(join(dir, 'bad'), { recursive: true })
    writeFileSync(join(dir, 'bad', 'cursor.json'), '{not json')
    const bad = watcher('bad')
    await expect(bad.w.pollOnce()).rejects.toMatchObject({ code: 'TFCHAIN_CURSOR_CORRUPT' })
    await bad.w.stop()
    const head = (await dev.api.rpc.chain.getHeader()).number.toNumber()
    mkdirSync(join(dir, 'off'), { recursive: true })
    writeFileSync(join(dir, 'off', 'cursor.json'), JSON.stringify({ v: 1, twinId: 1, blockNumber: head - 1, blockHash: `0x${'11'.repeat(32)}`, contracts: {}, nodes: {} }))
    const off = watcher('off')
    await expect(off.w.pollOnce()).rejects.toMatchObject({ code: 'TFCHAIN_CHAIN_MISMATCH' })
    await off.w.stop()
  })
})
