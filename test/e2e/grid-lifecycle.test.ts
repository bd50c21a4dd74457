/**
 * Buying from the ThreeFold Grid, end to end at the daemon level, with placement choosing the grid by price.
 *
 * Real: the anvil chain and the escrow contracts; the daemon (intake, placement, deploy, the 30-second loop, the
 * TFChain watcher of the operator's twin and its intake); the threefold target (node choice, TFT runway check at the
 * chain's TFT/USD rate, the grid worker child under its supervisor, the twin check); a TFChain runtime (spec 61)
 * under chopsticks holding the twins, the farm with its public IPv4 addresses, the node, and the node contracts the
 * worker creates and cancels (extrinsics signed by the operator's mnemonic); the Zero-OS deployment objects built,
 * hashed and signed by @threefold/grid_client's own primitives; the VM's workload (the blueprint's native artifact,
 * downloaded and sha256-verified by the runner's entrypoint, then run) listening on the public IP TFChain reserved.
 *
 * Faked: the RMB relay transport (the worker hands the signed deployment to the node by a function call) and the
 * Zero-OS node that runs the VM (test/fakes/zos-node.cjs: it checks the deployment's hash against the contract's on
 * chain, then runs the zmachine's entrypoint and env in network, PID and mount namespaces on the contract's public
 * IP instead of booting the flist in a micro VM), and the grid proxy (recorded node and farm records).
 *
 * ServiceInitiated → placement picks the grid (the local machine is dearer) → node contract with a public IP →
 * the VM answers → a bill from TFChain lands in the ledger → expiry: the contract cancelled, the VM gone (data lost,
 * as documented) → top-up: a new contract and VM → TTL: every contract of the twin cancelled and the farm's IPs
 * free again on chain; the watcher saw the cancellations as the daemon's own (no re-placement). Then a contract
 * cancelled by hand (not in the daemon's record of its own cancels) sends its service back to placement
 * (GRID_DEPLOYMENT_LOST), and the service is served again on a new contract.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { createTestCommon } from '../../core/common.js'
import { usd } from '../../core/money.js'
import type { Offer } from '../../core/offer.js'
import { startDaemon, type Daemon } from '../../daemon/daemon.js'
import { GRID_DEPLOYMENT_LOST } from '../../daemon/tfchainIntake.js'
import { writeCacheFile } from '../../pricing/catalog.js'
import { loadOwnCancels } from '../../provisioners/threefold/ownCancels.js'
import { canBootGridVms, demoAnswers as answers, demoHello, startGridFarm, tfchainSpec61TypesFile, zosWorkerPath, type GridFarm } from '../helpers/gridFarm.js'
import { startStack, waitFor, type Stack } from '../helpers/stack.js'

const RATE = 1000n

const gridOffer = (nodeId: number, hourly: string): Offer => ({
  provider: 'threefold',
  region: 'belgium',
  instanceType: `node-${nodeId}/1c-2g`,
  vcpu: 1,
  memoryGiB: 2,
  gpu: { count: 0 },
  includedStorageGiB: 0,
  hourlyUsd: usd(hourly),
  storageUsdPerGiBMonth: usd('0.09'),
  ipv4HourlyUsd: usd('0.005'),
  source: 'threefold',
  fetchedAt: Date.now(),
})

describe.skipIf(!canBootGridVms)('e2e: buying from the ThreeFold Grid (TFChain under chopsticks, a fake Zero-OS node booting real workloads)', () => {
  let farm: GridFarm
  let stack: Stack
  let dir: string
  let d: { daemon: Daemon; stop(): Promise<void> } | undefined
  beforeAll(async () => {
    farm = await startGridFarm()
    dir = mkdtempSync(join(tmpdir(), 'bpo-grid-e2e-'))
    writeFileSync(join(dir, 'mnemonic'), farm.mnemonic, { mode: 0o600 })
    const cache = join(dir, 'pricing')
    await writeCacheFile(cache, 'threefold', Date.now(), [gridOffer(farm.nodeId, '0.0100')])
    stack = await startStack({ loopMs: 500, attempts: 1 })
    const providers = stack.doc.providers as Record<string, unknown>
    ;(providers.local as Record<string, unknown>).hourly_usd = '0.05'
    providers.artifact_allow_hosts = ['127.0.0.1', farm.gateway]
    providers.threefold = {
      enabled: true,
      mnemonic: `file:${join(dir, 'mnemonic')}`,
      twin_id: farm.twinId,
      network: 'dev',
      substrate_url: farm.dev.chain.wsUrl,
      relay_url: 'ws://127.0.0.1:9',
      proxy_url: farm.proxy.url,
      tfchain_types: tfchainSpec61TypesFile,
      // generous: a loaded 2-core machine starts the VM's workload slowly
      boot_timeout_ms: 240_000,
    }
    stack.doc.pricing = { sources: ['threefold'], cache_dir: cache }
    const { common, shutdown } = createTestCommon()
    const daemon = await startDaemon({ config: stack.config(), common, gridWorkerPath: zosWorkerPath })
    d = {
      daemon,
      async stop() {
        for (const o of await daemon.targets.byName('threefold')!.provisioner.listOwned().catch(() => [])) await daemon.targets.byName('threefold')!.provisioner.destroy(o.deploymentId).catch(() => undefined)
        await daemon.stop()
        await shutdown(5000)
      },
    }
  }, 180_000)
  afterAll(async () => {
    await d?.stop()
    await stack?.stop()
    await farm?.stop()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  test('default: placement buys the grid → VM answers on its public IP → billed → zero (contract cancelled) → top-up → back → TTL → every contract cancelled on TFChain', { timeout: 900_000 }, async () => {
    const { chain } = stack
    const blueprintId = await stack.registerDemo({ url: farm.artifacts.urlOf('demo-service'), sha256: farm.artifacts.sha256('demo-service') })
    await chain.customer.mint(10_000_000n)
    const t0 = Date.now()
    const { serviceId } = await chain.customer.requestService({ blueprintId, operator: chain.operatorAddress, tier: 0, ttlSeconds: 900n, deposit: 90n * RATE })
    const dep = `bp-${chain.chainId}-${serviceId}`

    const active = await waitFor('active on the grid', () => stack.service(serviceId)?.state === 'active' && stack.service(serviceId), 300_000, 200)
    console.log(`grid e2e: request→active ${((Date.now() - t0) / 1000).toFixed(1)} s`)
    // the grid won on price: the local machine (0.05 USD/h) is the runner-up
    expect(active.quote).toMatchObject({ provider: 'threefold', target: 'threefold', instanceType: `node-${farm.nodeId}/1c-2g` })
    expect(active.decision!.winner).toMatchObject({ target: 'threefold' })
    expect(active.decision!.next.map((c) => c.target)).toContain('local')
    // one node contract of the twin on chain, holding one of the farm's public IPs: the VM's address
    const first = await farm.contractsOf(farm.twinId)
    expect([...first.values()]).toEqual(['created'])
    const [contract1] = [...first.keys()]
    const reserved = await farm.reservedIps()
    expect([...reserved.values()]).toEqual([contract1])
    const [ip1] = [...reserved.keys()]
    expect(active.endpoints).toEqual([`http://${ip1}:8080`])
    const hello = await demoHello(active.endpoints[0]!)
    expect(hello.deployment).toBe(dep)

    // TFChain bills the contract (an hour of its public IP): the watcher puts the TFT and its USD value in the ledger
    await billNext(farm, contract1!, 3_600_000)
    const billed = await waitFor('the bill in the ledger', () => Number(stack.service(serviceId)?.ledger.gridTft ?? 0) > 0 && stack.service(serviceId), 120_000, 200)
    expect(Number(billed.ledger.cloudCostUsd)).toBeGreaterThan(0)
    const billEvent = billed.grid!.lastEvent!

    // payment expires → the node contract is cancelled on chain, its public IP released, the VM stopped
    await stack.travel(200n)
    await waitFor('scaled-to-zero', () => stack.service(serviceId)?.state === 'scaled-to-zero', 120_000, 200)
    await waitFor('contract cancelled', async () => !(await farm.contractsOf(farm.twinId)).has(contract1!) || (await farm.contractsOf(farm.twinId)).get(contract1!) !== 'created', 60_000, 200)
    expect((await farm.reservedIps()).size).toBe(0)
    await waitFor('the VM is gone', async () => !(await answers(active.endpoints[0]!)), 60_000, 200)

    // top-up → a new node contract and a fresh VM (the grid keeps no disk without a contract: data lost, documented)
    await chain.customer.topUp(serviceId, 1_000n * RATE)
    const back = await waitFor('active again', () => {
      const s = stack.service(serviceId)
      return s?.state === 'active' && s.history.some((h) => h.cause === 'top-up') && s
    }, 300_000, 200)
    const live = [...(await farm.contractsOf(farm.twinId))].filter(([, st]) => st === 'created').map(([id]) => id)
    expect(live).toHaveLength(1)
    expect(live[0]).not.toBe(contract1)
    expect(await answers(back.endpoints[0]!)).toBe(true)

    // TTL → destroyed: no contract of the twin is live on chain and every public IP of the farm is free again
    await stack.travel(1_000n)
    const closed = await waitFor('closed', () => stack.service(serviceId)?.state === 'closed' && stack.service(serviceId), 120_000, 200)
    expect(closed.reason).toBe('TTL_REACHED')
    const after = await farm.contractsOf(farm.twinId)
    expect([...after.values()].filter((st) => st === 'created' || st === 'gracePeriod')).toEqual([])
    expect((await farm.reservedIps()).size).toBe(0)
    expect(await answers(back.endpoints[0]!)).toBe(false)
    expect(await d!.daemon.targets.byName('threefold')!.provisioner.listOwned()).toEqual([])
    // both contracts were recorded as the daemon's own before their cancels; the watcher saw the cancellations (its
    // cursor holds none of the twin's contracts) and took them for the daemon's own, whenever their blocks came
    expect([...loadOwnCancels(join(stack.dataDir, 'threefold'))].sort()).toEqual([contract1!, live[0]!].sort())
    await waitFor('the watcher past the last cancel', () => Object.keys(cursor(stack).contracts).length === 0, 60_000, 500)
    const [billBlock] = billEvent.split(':').map(Number)
    expect(Number(stack.service(serviceId)!.grid!.lastEvent!.split(':')[0])).toBeGreaterThan(billBlock!)
    expect(stack.service(serviceId)!.history.map((h) => h.cause)).not.toContain(GRID_DEPLOYMENT_LOST)
  })

  test('behavior: a contract cancelled outside the daemon (not in its record) sends the service back to placement; it is served again on a new contract', { timeout: 900_000 }, async () => {
    const { chain } = stack
    const blueprintId = await stack.registerDemo({ name: 'lost', url: farm.artifacts.urlOf('demo-service'), sha256: farm.artifacts.sha256('demo-service') })
    await chain.customer.mint(10_000_000n)
    const { serviceId } = await chain.customer.requestService({ blueprintId, operator: chain.operatorAddress, tier: 0, ttlSeconds: 600n, deposit: 600n * RATE })
    const active = await waitFor('active on the grid', () => stack.service(serviceId)?.state === 'active' && stack.service(serviceId), 300_000, 200)
    expect(active.quote).toMatchObject({ target: 'threefold' })
    const [contract] = [...(await farm.contractsOf(farm.twinId))].filter(([, st]) => st === 'created').map(([id]) => id)
    expect(loadOwnCancels(join(stack.dataDir, 'threefold')).has(contract!)).toBe(false)

    // the twin's owner cancels the contract by hand (the dashboard, another tool): TFChain says so, the daemon did not
    const owner = farm.dev.keyring.addFromUri(farm.mnemonic)
    const nonce = ((await farm.dev.api.query.system!.account!(owner.address)) as unknown as { nonce: { toNumber(): number } }).nonce.toNumber()
    const cancel = await farm.dev.api.tx.smartContractModule!.cancelContract!(BigInt(contract!)).signAsync(owner, { nonce, era: 0 })
    expect((await farm.dev.block([cancel.toHex()])).events.map((e) => e.name)).toContain('smartContractModule.NodeContractCanceled')

    // the watcher reports it → GRID_DEPLOYMENT_LOST → the old deployment destroyed, placement again → a new contract
    const back = await waitFor('served again', () => {
      const s = stack.service(serviceId)
      return s?.state === 'active' && s.history.some((h) => h.cause === GRID_DEPLOYMENT_LOST) && s
    }, 300_000, 200)
    expect(back.history.filter((h) => h.cause === GRID_DEPLOYMENT_LOST)).toEqual([expect.objectContaining({ from: 'active', to: 'requested', detail: `contract ${contract} cancelled outside the daemon` })])
    expect(back.grid?.lost?.why).toBe(`contract ${contract} cancelled outside the daemon`)
    const live = [...(await farm.contractsOf(farm.twinId))].filter(([, st]) => st === 'created').map(([id]) => id)
    expect(live).toHaveLength(1)
    expect(live[0]).not.toBe(contract)
    const hello = await demoHello(back.endpoints[0]!)
    expect(hello.deployment).toBe(`bp-${chain.chainId}-${serviceId}`)

    await chain.customer.terminate(serviceId)
    await waitFor('closed', () => stack.service(serviceId)?.state === 'closed', 120_000, 200)
    expect([...(await farm.contractsOf(farm.twinId)).values()].filter((st) => st === 'created')).toEqual([])
    expect((await farm.reservedIps()).size).toBe(0)
  })
})

/** The daemon's TFChain cursor. */
const cursor = (stack: Stack) => JSON.parse(readFileSync(join(stack.dataDir, 'tfchain', 'cursor.json'), 'utf8')) as { contracts: Record<string, unknown> }

/** Bill `contractId` in the next block whatever the runtime's billing frequency, `ms` of chain time later. */
async function billNext(farm: GridFarm, contractId: string, ms: number) {
  const { dev } = farm
  const head = (await dev.api.rpc.chain.getHeader()).number.toNumber()
  const key = (i: number) => dev.api.query.smartContractModule!.contractsToBillAt!.key(i)
  const ids = dev.api.createType('Vec<u64>', [BigInt(contractId)]).toHex()
  await dev.chain.rpc('dev_setStorage', [[...new Set([5, 10, 20, 50, 100, 300, 600, 3600].map((f) => (head + 1) % f))].map((i) => [key(i), ids])])
  await dev.timeTravel((await dev.now()) + ms)
  const b = await dev.block()
  if (!b.events.some((e) => e.name === 'smartContractModule.ContractBilled')) throw new Error(`no bill: ${JSON.stringify(b.events)}`)
}
