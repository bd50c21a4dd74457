/**
 * Scale of one daemon at 100 / 1,000 / 10,000 active services (issue 10). For each size, in a fresh process (so
 * RSS is that size's own):
 * - one reconcile tick of the daemon's service manager (daemon/service/: every service stepped, its payment state
 *   from the facts intake recorded; the latest block read once; one `getServices` over a rolling slice of
 *   `verify_per_tick` (500) at the cursor block, disagreements healed) with one own target whose replicas answer
 *   healthy at once — JSON-RPC HTTP requests counted by a fake node in a child process (test/fakes/escrow-rpc.ts,
 *   real wire format, viem and the escrow client unmodified), CPU ms (process.cpuUsage, median of 5 ticks), RSS MB;
 * - intake: events decoded from real logs, applied and durably recorded, one event per delivery (events/s);
 * - one service change written to the store (ms, median).
 * Ends with one line per size:
 * `scale: services=N rpc_requests=N cpu_ms=N rss_mb=N intake_events_per_s=N store_update_ms=N`.
 * Run: `npm run bench -- scale` or `node bin/run-ts.mjs bench/scale.ts [services]`.
 */
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { encodeAbiParameters, encodeEventTopics, type Hex, type Log } from 'viem'
import { createTestCommon } from '../core/common.js'
import { serviceEscrowAbi } from '../chain/contracts/abi.js'
import { anvilMnemonic } from '../chain/evm/anvil.js'
import { createEvmPublicClient, createEvmWalletClient } from '../chain/evm/clients.js'
import { decodeLog } from '../chain/evm/decode.js'
import { createEscrowClient } from '../chain/evm/escrow.js'
import { applyEvents } from '../daemon/intake.js'
import { parseConfig } from '../daemon/config.js'
import { defaultVerifyPerTick, factsFromOnchain } from '../daemon/paymentFacts.js'
import type { Placement } from '../daemon/placement/placement.js'
import type { Target, TargetRegistry } from '../daemon/ports.js'
import { createServiceManager } from '../daemon/service/manager.js'
import type { Provisioner } from '../provisioners/types.js'
import type { ServiceRecord } from '../daemon/state.js'
import { createStore } from '../daemon/store.js'
import { fakeChainId, fakeEscrowAddress, fakeHead, fleetService } from '../test/fakes/escrow-rpc.js'
import { mnemonicToAccount } from 'viem/accounts'
import { bytesToHex } from 'viem'

const here = fileURLToPath(import.meta.url)
const runner = fileURLToPath(new URL('../bin/run-ts.mjs', import.meta.url))
const fakePath = fileURLToPath(new URL('../test/fakes/escrow-rpc.ts', import.meta.url))

if (!process.argv[2]) {
  // one fresh process per size
  const lines: string[] = []
  for (const n of [100, 1000, 10_000]) {
    const r = spawnSync(process.execPath, ['--expose-gc', runner, here, String(n)], { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' })
    process.stdout.write(r.stdout)
    const line = r.stdout.split('\n').find((l) => l.startsWith('scale: '))
    if (r.status !== 0 || !line) {
      process.exitCode = 1
      continue
    }
    lines.push(line)
  }
  const fig = (l: string, k: string) => Number(new RegExp(`${k}=([\\d.]+)`).exec(l)?.[1])
  if (lines.length === 3) {
    const [a, , c] = lines as [string, string, string]
    const growth = (k: string) => (fig(c, k) / Math.max(fig(a, k), 1e-9)).toFixed(1)
    console.log(`\nscale targets at 10,000: rpc_requests ${fig(c, 'rpc_requests')} (<= 3), cpu_ms ${fig(c, 'cpu_ms')} (<= 500), rss_mb ${fig(c, 'rss_mb')} (<= 250), intake_events_per_s ${fig(c, 'intake_events_per_s')} (>= 2000), store_update_ms ${fig(c, 'store_update_ms')} (<= 2)`)
    console.log(`growth 100 -> 10,000 (x100 services): cpu_ms x${growth('cpu_ms')}, rss_mb x${growth('rss_mb')}, store_update_ms x${growth('store_update_ms')}, rpc_requests x${growth('rpc_requests')}`)
    for (const l of lines) console.log(l)
  }
} else {
  await measure(Number(process.argv[2]))
}

async function measure(n: number): Promise<void> {
  const { common } = createTestCommon()
  const child = spawn(process.execPath, [runner, fakePath, String(n)], { stdio: ['ignore', 'pipe', 'inherit'] })
  const first = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve)
    child.once('exit', (code) => reject(new Error(`the fake node exited (${code})`)))
  })
  const fake = JSON.parse(first) as { url: string; stats: string }
  const stats = async () => (await (await fetch(fake.stats)).json()) as { httpRequests: number; calls: number }
  const dir = mkdtempSync(join(tmpdir(), 'bpo-bench-scale-'))
  try {
    const store = await createStore(common, { file: join(dir, 'state.json'), operatorId: 'bench', chainId: fakeChainId })
    const ids = Array.from({ length: n }, (_, i) => String(i + 1))
    await store.update((st) => {
      for (const id of ids) st.services[id] = record(id, n)
      st.cursor = { blockNumber: (fakeHead - 2n).toString(), blockHash: `0x${(fakeHead - 2n).toString(16).padStart(64, '0')}` }
    })
    const publicClient = createEvmPublicClient({ rpcUrl: fake.url, chainId: fakeChainId, batchSize: 50 })
    const key = bytesToHex(mnemonicToAccount(anvilMnemonic, { addressIndex: 1 }).getHdKey().privateKey!)
    const walletClient = createEvmWalletClient({ rpcUrl: fake.url, chainId: fakeChainId, privateKey: key })
    const escrow = createEscrowClient(common, { publicClient, walletClient, escrow: fakeEscrowAddress, registry: fakeEscrowAddress })

    // the daemon's service manager over this store, the escrow client and one own target whose replicas are healthy
    const provisioner = {
      status: async (deploymentId: string) => ({ deploymentId, exists: true, replicasWanted: 1, replicasReady: 1, endpoints: ['http://10.0.0.21:20001'], healthy: true }),
      scale: async (deploymentId: string, replicas: number) => ({ deploymentId, exists: true, replicasWanted: replicas, replicasReady: replicas, endpoints: replicas ? ['http://10.0.0.21:20001'] : [], healthy: true }),
    } as unknown as Provisioner
    const target = { name: 'ssh:rack-1', kind: 'own', provider: 'own', provisioner, sourceKinds: ['native'], offersFor: () => [] } as unknown as Target
    const targets: TargetRegistry = { list: () => [target], byName: (name) => (name === target.name ? target : undefined), provisioners: () => [provisioner], close: async () => undefined }
    const config = parseConfig(
      {
        operator: { id: 'bench', data_dir: dir },
        chain: { rpc_url: fake.url, chain_id: fakeChainId, private_key: 'env:BPO_BENCH_KEY', registry: fakeEscrowAddress, escrow: fakeEscrowAddress },
        loop: { verify_per_tick: defaultVerifyPerTick },
        http: { enabled: false },
        providers: { local: { enabled: false } },
      },
      { env: { BPO_BENCH_KEY: key }, baseDir: dir },
    )
    // chain time as the daemon reads it: one latest block per tick, shared by every service
    let blockRead: { at: number; done: Promise<bigint> } | undefined
    const now = async () => {
      if (!blockRead || Date.now() - blockRead.at > 1000) blockRead = { at: Date.now(), done: publicClient.getBlock({ blockTag: 'latest' }).then((b) => b.timestamp) }
      return blockRead.done
    }
    const manager = createServiceManager(common, { config, store, escrow, targets, placement: {} as Placement, now })
    const tick = async () => {
      blockRead = undefined
      await manager.tick()
    }

    await tick() // warm-up (JIT, connections)
    const cpu: number[] = []
    const rpc: number[] = []
    for (let k = 0; k < 5; k++) {
      const s0 = await stats()
      const c0 = process.cpuUsage()
      await tick()
      const c = process.cpuUsage(c0)
      cpu.push((c.user + c.system) / 1000)
      rpc.push((await stats()).httpRequests - s0.httpRequests)
    }
    ;(globalThis as { gc?: () => void }).gc?.()
    const mem = process.memoryUsage()
    const rss = mem.rss / 2 ** 20

    // intake: one PaymentReceived per delivery, decoded from a real log, applied and durably recorded
    const ctx = { operator: `0x${'11'.repeat(20)}`, chainId: fakeChainId, logger: common.logger }
    let events = 0
    const t0 = performance.now()
    while ((performance.now() - t0 < 2_000 || events < 5) && events < 5_000) {
      const id = BigInt((events % n) + 1)
      const e = decodeLog(paymentLog(id, events), fakeChainId)
      await store.update((st) => applyEvents(st, [e], ctx))
      events++
    }
    const perS = events / ((performance.now() - t0) / 1000)

    // one service change written to the store
    const upd: number[] = []
    const u0 = performance.now()
    while ((performance.now() - u0 < 2_000 || upd.length < 5) && upd.length < 200) {
      const id = ids[upd.length % n]!
      const t = performance.now()
      await store.update((st) => void (st.services[id]!.health.lastCheck = new Date().toISOString()))
      upd.push(performance.now() - t)
    }
    await store.close()
    const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
    const metrics = await common.metrics.render()
    const disagreements = [...metrics.matchAll(/bpo_payment_fact_disagreements_total\{[^}]*\} (\d+)/g)].reduce((a, m) => a + Number(m[1]), 0)
    const states = Object.values(store.read().services).reduce<Record<string, number>>((a, r) => ((a[r.state] = (a[r.state] ?? 0) + 1), a), {})
    console.error(
      `scale ${n}: verify slice ${Math.min(defaultVerifyPerTick, n)}, ${disagreements} disagreement(s) found and healed over 6 ticks; states ${JSON.stringify(states)}; rpc per tick ${rpc.join(',')}; heap used ${(mem.heapUsed / 2 ** 20).toFixed(0)} MB; cpu per tick ${cpu.map((x) => x.toFixed(0)).join(',')} ms; ${events} intake events, ${upd.length} store updates`,
    )
    await manager.stop()
    console.log(
      `scale: services=${n} rpc_requests=${med(rpc)} cpu_ms=${med(cpu).toFixed(0)} rss_mb=${rss.toFixed(0)} intake_events_per_s=${perS.toFixed(0)} store_update_ms=${med(upd).toFixed(2)}`,
    )
  } finally {
    child.kill('SIGTERM')
    rmSync(dir, { recursive: true, force: true })
  }
}

/** An active service as intake recorded it: its payment facts come from its events (the fake chain's record before drift). */
function record(id: string, n: number): ServiceRecord {
  const s = fleetService(BigInt(id), n)!.recorded
  const at = new Date().toISOString()
  return {
    serviceId: id, blueprintId: '1', chainId: fakeChainId, customer: s.customer, tierIndex: s.tier, tier: (['basic', 'standard', 'premium'] as const)[s.tier],
    ttlSeconds: s.ttl.toString(), deposit: s.balance.toString(), deploymentId: `bp-${fakeChainId}-${id}`, state: 'active',
    spec: { vcpu: 1, memoryGiB: 2, storageGiB: 10, gpu: { count: 0 }, replicas: 1, minReplicas: 1, maxReplicas: 2, regions: [], spotAllowed: false, highAvailability: false, ports: [8080], tier: 'basic' },
    source: { kind: 'native', url: 'https://artifacts.example/demo', sha256: 'ab'.repeat(32) },
    quote: { provider: 'own', target: 'ssh:rack-1', region: 'eu-home', instanceType: 'ssh:rack-1', placement: 'rack-1', hourlyUsd: '0.05', totalHourlyUsd: '0.05', replicas: 1, source: 'own-targets' },
    replicas: 1, endpoints: ['http://10.0.0.21:20001'], costSince: at,
    chain: factsFromOnchain({ ...s, state: 'active' }, fakeHead - 2n),
    health: { failures: 0, restarts: 0, healthy: true, lastCheck: at },
    ledger: { paid: s.balance.toString(), earned: '0', withdrawn: '0', refunded: '0', cloudCostUsd: '0' },
    createdAt: at, updatedAt: at,
    history: [{ at, from: null, to: 'requested', cause: 'ServiceInitiated' }, { at, from: 'requested', to: 'provisioning', cause: 'quoted' }, { at, from: 'provisioning', to: 'active', cause: 'healthy' }],
  }
}

function paymentLog(serviceId: bigint, k: number): Log {
  const topics = encodeEventTopics({ abi: serviceEscrowAbi, eventName: 'PaymentReceived', args: { serviceId, payer: `0x${'22'.repeat(20)}` } }) as [Hex, ...Hex[]]
  return {
    address: fakeEscrowAddress,
    topics,
    data: encodeAbiParameters([{ type: 'uint256' }, { type: 'uint256' }, { type: 'uint64' }, { type: 'uint64' }], [1_000n, 10_000_000n + BigInt(k), 1_800_010_000n, 1_800_000_000n]),
    blockNumber: fakeHead + BigInt(k),
    blockHash: `0x${(fakeHead + BigInt(k)).toString(16).padStart(64, '0')}`,
    transactionHash: `0x${k.toString(16).padStart(64, 'f')}`,
    transactionIndex: 0,
    logIndex: 0,
    removed: false,
  } as Log
}
