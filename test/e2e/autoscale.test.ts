/**
 * Load-based autoscaling within the tier's bounds, end to end on the local target and on an SSH host: a standard-tier
 * service (2 paid replicas, up to 4) is loaded through the demo service's CPU-burning path; the loop reads the
 * replicas' cgroup CPU counters, scales up past the stabilisation window, and back down after the load stops — never
 * below the 2 paid for. Loaded again, it scales up again, and its payment running out still takes it to zero while
 * the load goes on. Replica-hours in the ledger match the replicas that ran, transition by transition. The timeline is
 * printed. On the local target too: the margin check prices an autoscaling tier at its maximum, or at priced_replicas.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { sleep } from '../../core/retry.js'
import type { ServiceRecord } from '../../daemon/state.js'
import { sshdMissing, startSshd, type Sshd } from '../helpers/sshd.js'
import { startInProcess, startStack, waitFor, type Stack } from '../helpers/stack.js'

const RATE = 2000n // standard tier: 7_200_000 base units per hour
const MIN = 2
const MAX = 4

const extra = {
  tiers: { basic: { min_replicas: 1, max_replicas: 1 }, standard: { min_replicas: MIN, max_replicas: MAX }, premium: { min_replicas: 3, max_replicas: 5, priced_replicas: 3 } },
  autoscale: { target_utilisation: 0.5, scale_up_window_ms: 1_500, scale_down_window_ms: 4_000, max_sample_age_ms: 10_000 },
}

describe('e2e: autoscaling on load (local target)', () => {
  let stack: Stack
  let d: Awaited<ReturnType<typeof startInProcess>>
  beforeAll(async () => {
    stack = await startStack({ loopMs: 500, extra })
    d = await startInProcess(stack)
  })
  afterAll(async () => {
    await d?.stop()
    await stack?.stop()
  })
  test('behavior: a standard-tier service grows under CPU load and shrinks after it, within 2..4 replicas; expiry wins over load', { timeout: 300_000 }, (ctx) => loadCycle(ctx, stack, d, 'local'))

  test('behavior: the margin check prices an autoscaling tier at its maximum replicas, or at priced_replicas', async () => {
    const { chain } = stack
    // local capacity costs 0.01 USD per replica-hour; the tier price 0.036 USD/h pays for 3 replicas at a ratio of 1
    const blueprintId = await stack.registerDemo({ name: 'thin-margin', prices: [3_600_000n, 36_000n, 36_000n] })
    // standard autoscales 2..4 and is priced at 4 (0.04 USD/h > 0.036): refused, though its 2 paid replicas would fit
    const std = await chain.customer.requestService({ blueprintId, operator: chain.operatorAddress, tier: 1, ttlSeconds: 3600n, deposit: 36_000n })
    const refused = await waitFor('refunded', () => stack.service(std.serviceId)?.state === 'refunded' && stack.service(std.serviceId), 60_000)
    expect(refused.reason).toBe('MARGIN_TOO_LOW')
    expect(await stack.refunds(std.serviceId)).toEqual([{ amount: 36_000n, reason: 'MARGIN_TOO_LOW' }])
    // premium autoscales 3..5 but the operator prices it at 3 (priced_replicas): 0.03 USD/h fits, it is served
    const prem = await chain.customer.requestService({ blueprintId, operator: chain.operatorAddress, tier: 2, ttlSeconds: 3600n, deposit: 36_000n })
    const served = await waitFor('active', () => stack.service(prem.serviceId)?.state === 'active' && stack.service(prem.serviceId), 90_000)
    expect(served.history.find((h) => h.cause === 'quoted')?.detail).toMatch(/priced at 3\)$/)
    expect(served.replicas).toBe(3)
    await chain.customer.terminate(prem.serviceId)
    await waitFor('closed', () => stack.service(prem.serviceId)?.state === 'closed', 60_000)
  }, 180_000)
})

const noSshd = sshdMissing()
describe.skipIf(!!noSshd)('e2e: autoscaling on load (SSH host)', () => {
  let stack: Stack
  let sshd: Sshd
  let d: Awaited<ReturnType<typeof startInProcess>>
  beforeAll(async () => {
    sshd = await startSshd()
    stack = await startStack({
      loopMs: 500,
      extra: {
        ...extra,
        providers: {
          local: { enabled: false },
          ssh: { hosts: [{ name: 'rack-1', address: sshd.address, port: sshd.port, user: sshd.user, private_key: 'file:keys/rack-1', host_key: sshd.hostKey, vcpu: 4, memory_gib: 4, storage_gib: 20, hourly_usd: '0.01', remote_root: `/tmp/bpo-e2e-autoscale-${Math.random().toString(36).slice(2, 8)}` }] },
        },
      },
    })
    mkdirSync(join(stack.dataDir, 'keys'), { recursive: true })
    writeFileSync(join(stack.dataDir, 'keys', 'rack-1'), sshd.privateKey, { mode: 0o600 })
    d = await startInProcess(stack)
  })
  afterAll(async () => {
    await d?.stop()
    await stack?.stop()
    await sshd?.stop()
  })
  test('behavior: a standard-tier service grows under CPU load and shrinks after it, within 2..4 replicas; expiry wins over load', { timeout: 300_000 }, (ctx) => loadCycle(ctx, stack, d, 'ssh:rack-1'))
})

/** Replicas running after each transition of a service, from its history (activation, autoscaling, expiry, top-up). */
function timelineOf(rec: ServiceRecord): { at: number; replicas: number; state: string; cause: string; detail?: string }[] {
  const rows: { at: number; replicas: number; state: string; cause: string; detail?: string }[] = []
  let replicas = 0
  for (const h of rec.history) {
    if (h.to === 'active' && h.from === 'provisioning') replicas = rec.quote!.replicas
    else if (h.cause.startsWith('autoscale')) replicas = Number(/^(\d+) → (\d+) replica/.exec(h.detail ?? '')?.[2])
    else if (h.to === 'scaled-to-zero' || h.to === 'terminating' || h.to === 'closed') replicas = 0
    else if (h.to === 'active') replicas = Number(/^(\d+) replica/.exec(h.detail ?? '')?.[1])
    rows.push({ at: Date.parse(h.at), replicas, state: h.to, cause: h.cause, ...(h.detail && { detail: h.detail }) })
  }
  return rows
}

async function loadCycle(ctx: { skip(): void }, stack: Stack, d: Awaited<ReturnType<typeof startInProcess>>, targetName: string) {
  const { chain } = stack
  const target = d.daemon.targets.byName(targetName)!
  let ticks = 0
  const unsubscribe = d.daemon.bus.subscribe((e) => void (e.type === 'tick' && ticks++))
  const afterTicks = async (n: number) => {
    const until = ticks + n
    await waitFor(`${n} reconcile passes`, () => ticks >= until, 30_000, 50)
  }
  const blueprintId = await stack.registerDemo({ name: 'autoscale', vcpuMilli: 250 })
  await chain.customer.mint(100_000_000n)
  // paid for an hour of chain time, TTL two hours: the payment runs out first
  const { serviceId } = await chain.customer.requestService({ blueprintId, operator: chain.operatorAddress, tier: 1, ttlSeconds: 7200n, deposit: 3600n * RATE })
  const dep = `bp-${chain.chainId}-${serviceId}`
  const t0 = Date.now()
  const at = () => `${((Date.now() - t0) / 1000).toFixed(1)} s`
  const svc = () => stack.service(serviceId)
  await waitFor('active', () => svc()?.state === 'active', 90_000)
  const st = await target.provisioner.status(dep)
  if (!st.usage) return ctx.skip() // no CPU counters here (no cgroup cpuacct): nothing to scale on
  expect(svc()!.replicas).toBe(MIN)
  console.log(`autoscale ${targetName}: active with ${MIN} replicas at ${at()}`)

  // load: three clients burning CPU on every replica the service has
  let loading = false
  let clients: Promise<void>[] = []
  const startLoad = () => {
    loading = true
    clients = [0, 1, 2].map(async (i) => {
      while (loading) {
        const eps = svc()?.endpoints ?? []
        const ep = eps[i % Math.max(1, eps.length)]
        if (!ep) {
          await sleep(100)
          continue
        }
        await fetch(`${ep}/burn?ms=400`, { signal: AbortSignal.timeout(10_000) }).then((r) => r.text()).catch(() => sleep(100))
      }
    })
  }
  const stopLoad = async () => {
    loading = false
    await Promise.all(clients)
  }
  try {
    startLoad()
    const up = await waitFor('scaled up', () => (svc()?.replicas ?? 0) > MIN && svc(), 120_000, 100)
    console.log(`autoscale ${targetName}: scaled up to ${up.replicas} replicas at ${at()} (${up.history.at(-1)?.detail})`)
    expect(up.history.at(-1)?.cause).toBe('autoscale up')
    await waitFor('replicas serving', async () => (await target.provisioner.status(dep)).replicasReady === up.replicas, 30_000)
    await stopLoad()
    console.log(`autoscale ${targetName}: load stopped at ${at()}`)
    const down = await waitFor('scaled back down', () => svc()?.replicas === MIN && svc(), 120_000, 100)
    console.log(`autoscale ${targetName}: back to ${down.replicas} replicas at ${at()} (${down.history.at(-1)?.detail})`)
    expect(down.history.at(-1)?.cause).toBe('autoscale down')
    // idle: the load would call for 1 replica; the 2 paid for stay
    await afterTicks(8)
    expect(svc()!.replicas).toBe(MIN)
    expect((await target.provisioner.status(dep)).replicasWanted).toBe(MIN)

    // loaded again: up again; then the payment runs out while the load goes on
    startLoad()
    const again = await waitFor('scaled up again', () => (svc()?.replicas ?? 0) > MIN && svc(), 120_000, 100)
    console.log(`autoscale ${targetName}: loaded again, up to ${again.replicas} replicas at ${at()}`)
    await stack.travel(3700n)
    const zero = await waitFor('scaled to zero', () => svc()?.state === 'scaled-to-zero' && svc(), 60_000, 100)
    console.log(`autoscale ${targetName}: paid-until passed under load: ${zero.replicas} replicas at ${at()}`)
    await afterTicks(6)
    const still = svc()!
    expect({ state: still.state, replicas: still.replicas }).toEqual({ state: 'scaled-to-zero', replicas: 0 })
    const expired = still.history.findIndex((h) => h.cause === 'payment expired')
    expect(still.history.slice(expired + 1)).toEqual([])
    expect(await target.provisioner.status(dep)).toMatchObject({ replicasWanted: 0, replicasReady: 0, endpoints: [] })
  } finally {
    await stopLoad()
    unsubscribe()
  }

  const rec = svc()!
  const rows = timelineOf(rec).filter((r) => r.at >= Date.parse(rec.history.find((h) => h.to === 'active')!.at))
  const tA = rows[0]!.at
  console.log(
    [
      `autoscale ${targetName}: timeline (standard tier, paid ${MIN}, max ${MAX}; target utilisation 0.5, up window 1.5 s, down window 4 s, loop 500 ms)`,
      ...rows.map((r) => `  t=${((r.at - tA) / 1000).toFixed(1).padStart(5)} s  replicas=${r.replicas}  ${r.state.padEnd(14)} ${r.cause}${r.detail && r.cause !== 'healthy' ? `: ${r.detail}` : ''}`),
    ].join('\n'),
  )
  // never below what is paid for, never above the tier's maximum while paid
  const scaled = rows.filter((r) => r.cause.startsWith('autoscale')).map((r) => r.replicas)
  expect(Math.min(...scaled)).toBeGreaterThanOrEqual(MIN)
  expect(Math.max(...scaled)).toBeLessThanOrEqual(MAX)
  expect(scaled.filter((n) => n > MIN).length).toBeGreaterThanOrEqual(2)
  // replica-hours accrue as the replicas run: the sum over the timeline's segments of replicas × duration
  let expected = 0
  for (let i = 0; i + 1 < rows.length; i++) expected += (rows[i]!.replicas * (rows[i + 1]!.at - rows[i]!.at)) / 3_600_000
  const recorded = Number(rec.ledger.replicaHours)
  console.log(`autoscale ${targetName}: replica-hours recorded ${recorded.toFixed(6)}, from the timeline ${expected.toFixed(6)}`)
  expect(Math.abs(recorded - expected)).toBeLessThan(expected * 0.01)
  // the same time at the paid minimum would be less: the autoscaled replicas were counted
  expect(recorded).toBeGreaterThan((MIN * (rows.at(-1)!.at - tA)) / 3_600_000)

  await chain.customer.terminate(serviceId)
  await waitFor('closed', () => svc()?.state === 'closed', 60_000)
}
