/**
 * The state store's cost per update (embedded SQLite, WAL, synchronous=FULL: one fsync per group commit) as the
 * number of services grows — an update must cost O(changed rows), not O(all services) (issue 10: <= 2 ms per service
 * change at 10,000 services). Also: a tick's worth of concurrent updates, group-committed.
 * Run: `npm run bench -- store`.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createTestCommon } from '../core/common.js'
import { createStore } from '../daemon/store.js'
import type { ServiceRecord } from '../daemon/state.js'

function record(i: number): ServiceRecord {
  const at = new Date().toISOString()
  return {
    serviceId: String(i), blueprintId: '1', chainId: 31337, customer: `0x${'22'.repeat(20)}`, tierIndex: 1, tier: 'standard',
    preferences: { regions: ['eu'] }, ttlSeconds: '2592000', deposit: '100000000', deploymentId: `bp-31337-${i}`, state: 'active',
    spec: { vcpu: 1, memoryGiB: 2, storageGiB: 10, gpu: { count: 0 }, replicas: 2, minReplicas: 2, maxReplicas: 5, regions: ['eu'], spotAllowed: false, highAvailability: false, ports: [8080], tier: 'standard' },
    source: { kind: 'native', url: 'https://artifacts.example/demo', sha256: 'ab'.repeat(32) },
    quote: { provider: 'own', target: 'ssh:rack-1', region: 'eu-home', instanceType: 'ssh:rack-1', placement: 'rack-1', hourlyUsd: '0.05', totalHourlyUsd: '0.1', replicas: 2, source: 'own-targets' },
    replicas: 2, endpoints: ['http://10.0.0.21:20001', 'http://10.0.0.21:20002'],
    chain: { activatedAt: '1795400000', endsAt: '1797992000', paidUntil: '1795500000', ratePerHour: '7200000', balance: '90000000', onchainState: 'active' },
    health: { failures: 0, restarts: 0, healthy: true, lastCheck: at },
    ledger: { paid: '100000000', earned: '0', withdrawn: '0', refunded: '0', cloudCostUsd: '0.0123' },
    createdAt: at, updatedAt: at,
    history: [
      { at, from: null, to: 'requested', cause: 'ServiceInitiated', eventId: `31337:0x${'ab'.repeat(32)}:0` },
      { at, from: 'requested', to: 'provisioning', cause: 'quoted' },
      { at, from: 'provisioning', to: 'active', cause: 'healthy' },
    ],
  }
}

const { common } = createTestCommon()
for (const [n, sync] of [[100, 'full'], [1000, 'full'], [10_000, 'full'], [10_000, 'normal']] as const) {
  const dir = mkdtempSync(join(tmpdir(), 'bpo-bench-store-'))
  const file = join(dir, 'state.sqlite')
  const store = await createStore(common, { file, operatorId: 'bench', chainId: 31337, sqliteSynchronous: sync })
  await store.update((st) => {
    for (let i = 0; i < n; i++) st.services[String(i)] = record(i)
  })
  const times: number[] = []
  const rounds = 300
  const cpu0 = process.cpuUsage()
  for (let k = 0; k < rounds; k++) {
    const t0 = performance.now()
    await store.update((st) => {
      st.services[String((k * 7919) % n)]!.health.lastCheck = new Date().toISOString()
    })
    times.push(performance.now() - t0)
  }
  const cpu = process.cpuUsage(cpu0)
  const cpuMs = ((cpu.user + cpu.system) / 1000 / rounds).toFixed(2)
  times.sort((a, b) => a - b)
  const q = (x: number) => times[Math.min(times.length - 1, Math.floor(x * times.length))]!.toFixed(2)
  // the quote step's pattern: every service read (capacity), one changed
  const scan: number[] = []
  for (let k = 0; k < 20; k++) {
    const t0 = performance.now()
    await store.update((st) => {
      let vcpu = 0
      for (const o of Object.values(st.services)) if (o.state === 'active' && o.spec) vcpu += o.spec.vcpu * o.replicas
      st.services[String(k % n)]!.health.failures = vcpu > 0 ? 0 : 1
    })
    scan.push(performance.now() - t0)
  }
  scan.sort((a, b) => a - b)
  // a reconcile tick: every service's update issued at once, committed in groups
  const tick: number[] = []
  for (let k = 0; k < 3; k++) {
    const t0 = performance.now()
    await Promise.all(Array.from({ length: n }, (_, i) => store.update((st) => void (st.services[String(i)]!.health.lastCheck = new Date().toISOString()))))
    tick.push(performance.now() - t0)
  }
  tick.sort((a, b) => a - b)
  await store.close()
  const mb = (statSync(file).size / 1048576).toFixed(1)
  console.log(
    `store  sqlite synchronous=${sync.padEnd(6)} ${String(n).padStart(5)} services (${mb} MiB): one service change p50 ${q(0.5)} ms, p99 ${q(0.99)} ms (CPU ${cpuMs} ms, the rest is the fsync); ` +
      `read-all + one change p50 ${scan[10]!.toFixed(2)} ms; ${n} concurrent changes (a tick, group commit) ${tick[1]!.toFixed(0)} ms = ${((tick[1]! * 1000) / n).toFixed(0)} us/change`,
  )
  console.log(`store: services=${n} synchronous=${sync} store_update_ms=${q(0.5)} store_update_cpu_ms=${cpuMs} store_tick_us_per_change=${((tick[1]! * 1000) / n).toFixed(0)}`)
  rmSync(dir, { recursive: true, force: true })
}
