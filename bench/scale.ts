/**
 * Scale of one daemon at 100 / 1,000 / 10,000 active services (issue 10). For each size, in a fresh process (so
 * RSS is that size's own):
 * - one reconcile tick of the daemon's service manager (daemon/service/: every service stepped, its payment state
 *   from the facts intake recorded; the latest block read once; one `getServices` over a rolling slice of
 *   `verify_per_tick` (500) at the cursor block, disagreements healed) with one own target whose replicas answer
 *   healthy at once — JSON-RPC HTTP requests counted by a fake node in a child process (test/fakes/escrow-rpc.ts,
 *   real wire format, viem and the escrow client unmodified), CPU ms (process.cpuUsage, median of 5 ticks), RSS MB;
 * - intake: events decoded from real logs, applied and durably recorded, one event per delivery (events/s): each
 *   delivery is the daemon's write (daemon/intake.ts createCursorWriter: the events, their processed ids and the
 *   cursor past them in one transaction, synchronous = FULL), and deliveries are made as the chain follower makes
 *   them: up to `deliveriesInFlight` in flight, the next one decoded while earlier ones commit, each awaited, in
 *   order, until durable. Writes queued while a commit is in flight commit together (group commit); an event counts
 *   only once its delivery resolved;
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
import { decodeLog } from '../chain/evm/decode.js'
import { applyEvents, createCursorWriter, deliveriesInFlight, pruneProcessed } from '../daemon/intake.js'
import { defaultVerifyPerTick } from '../daemon/paymentFacts.js'
import { fakeChainId, fakeEscrowAddress, fakeHead } from '../test/fakes/escrow-rpc.js'
import { startFleet } from '../test/helpers/fleet.js'

const here = fileURLToPath(import.meta.url)
const runner = fileURLToPath(new URL('../bin/run-ts.mjs', import.meta.url))
const fakePath = fileURLToPath(new URL('../test/fakes/escrow-rpc.ts', import.meta.url))

if (!process.argv[2]) {
  // one fresh process per size
  const lines: string[] = []
  for (const n of [100, 1000, 10_000]) {
    const r = spawnSync(process.execPath, ['--expose-gc', runner, here, String(n)], { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' })
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
  }
  // exactly one line per size, last
  for (const l of lines) console.log(l)
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
    const fleet = await startFleet(common, { n, rpcUrl: fake.url, dir, verifyPerTick: defaultVerifyPerTick })
    const { store, ids } = fleet
    const tick = () => fleet.tick()

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

    // intake: one PaymentReceived per delivery, decoded from a real log, applied and durably recorded with the cursor
    // past it; deliveries pipelined as the follower does (at most deliveriesInFlight in flight, awaited in order)
    const ctx = { operator: `0x${'11'.repeat(20)}`, chainId: fakeChainId, logger: common.logger }
    const writer = createCursorWriter(store)
    const inflight: Promise<unknown>[] = []
    let events = 0
    let issued = 0
    const t0 = performance.now()
    while ((performance.now() - t0 < 2_000 || issued < 5) && issued < 5_000) {
      const id = BigInt((issued % n) + 1)
      const e = decodeLog(paymentLog(id, issued), fakeChainId)
      inflight.push(
        writer.write({ blockNumber: e.blockNumber.toString(), blockHash: e.blockHash }, (st) => {
          applyEvents(st, [e], ctx)
          pruneProcessed(st, e.blockNumber)
        }),
      )
      issued++
      if (inflight.length >= deliveriesInFlight) {
        await inflight.shift()
        events++
      }
    }
    for (const d of inflight) {
      await d
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
    await fleet.stop()
    const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
    const metrics = await common.metrics.render()
    const disagreements = [...metrics.matchAll(/bpo_payment_fact_disagreements_total\{[^}]*\} (\d+)/g)].reduce((a, m) => a + Number(m[1]), 0)
    const states = Object.values(store.read().services).reduce<Record<string, number>>((a, r) => ((a[r.state] = (a[r.state] ?? 0) + 1), a), {})
    console.error(
      `scale ${n}: verify slice ${Math.min(defaultVerifyPerTick, n)}, ${disagreements} disagreement(s) found and healed over 6 ticks; states ${JSON.stringify(states)}; rpc per tick ${rpc.join(',')}; heap used ${(mem.heapUsed / 2 ** 20).toFixed(0)} MB; cpu per tick ${cpu.map((x) => x.toFixed(0)).join(',')} ms; ${events} intake events, ${upd.length} store updates`,
    )
    console.log(
      `scale: services=${n} rpc_requests=${med(rpc)} cpu_ms=${med(cpu).toFixed(0)} rss_mb=${rss.toFixed(0)} intake_events_per_s=${perS.toFixed(0)} store_update_ms=${med(upd).toFixed(2)}`,
    )
  } finally {
    child.kill('SIGTERM')
    rmSync(dir, { recursive: true, force: true })
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
