/**
 * Load-based autoscaling within the tier's bounds, end to end on the local target: a standard-tier service (1 paid
 * replica, up to 3) is loaded through the demo service's CPU-burning path; the loop reads the replicas' cgroup CPU
 * counters, scales up past the stabilisation window, and back down after the load stops — never below what is paid
 * for. The timeline is printed.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { sleep } from '../../core/retry.js'
import { sshdMissing, startSshd, type Sshd } from '../helpers/sshd.js'
import { startInProcess, startStack, waitFor, type Stack } from '../helpers/stack.js'

const RATE = 2000n // standard tier: 7_200_000 base units per hour

const extra = {
  tiers: { basic: { min_replicas: 1, max_replicas: 1 }, standard: { min_replicas: 1, max_replicas: 3 }, premium: { min_replicas: 3, max_replicas: 5 } },
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
  test('behavior: a standard-tier service grows under CPU load and shrinks after it, within 1..3 replicas', { timeout: 300_000 }, (ctx) => loadCycle(ctx, stack, d, 'local'))
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
  test('behavior: a standard-tier service grows under CPU load and shrinks after it, within 1..3 replicas', { timeout: 300_000 }, (ctx) => loadCycle(ctx, stack, d, 'ssh:rack-1'))
})

async function loadCycle(ctx: { skip(): void }, stack: Stack, d: Awaited<ReturnType<typeof startInProcess>>, targetName: string) {
  {

    const { chain } = stack
    const blueprintId = await stack.registerDemo({ name: 'autoscale', vcpuMilli: 250 })
    await chain.customer.mint(100_000_000n)
    const { serviceId } = await chain.customer.requestService({ blueprintId, operator: chain.operatorAddress, tier: 1, ttlSeconds: 3600n, deposit: 3600n * RATE })
    const dep = `bp-${chain.chainId}-${serviceId}`
    const t0 = Date.now()
    const at = () => `${((Date.now() - t0) / 1000).toFixed(1)} s`
    await waitFor('active', () => stack.service(serviceId)?.state === 'active', 60_000)
    const st = await d.daemon.targets.byName(targetName)!.provisioner.status(dep)
    if (!st.usage) return ctx.skip() // no CPU counters here (no cgroup cpuacct): nothing to scale on
    expect(stack.service(serviceId)!.replicas).toBe(1)
    console.log(`autoscale ${targetName}: active with 1 replica at ${at()}`)

    // load: three clients burning CPU on every replica the service has
    let loading = true
    const clients = [0, 1, 2].map(async (i) => {
      while (loading) {
        const eps = stack.service(serviceId)?.endpoints ?? []
        const ep = eps[i % Math.max(1, eps.length)]
        if (!ep) {
          await sleep(100)
          continue
        }
        await fetch(`${ep}/burn?ms=400`, { signal: AbortSignal.timeout(10_000) }).then((r) => r.text()).catch(() => sleep(100))
      }
    })
    const up = await waitFor('scaled up', () => (stack.service(serviceId)?.replicas ?? 0) >= 2 && stack.service(serviceId), 120_000, 100)
    console.log(`autoscale ${targetName}: scaled up to ${up.replicas} replicas at ${at()} (${up.history.at(-1)?.detail})`)
    expect(up.history.some((h) => h.cause === 'autoscale up')).toBe(true)
    await waitFor('replicas serving', async () => (await d.daemon.targets.byName(targetName)!.provisioner.status(dep)).replicasReady >= 2, 30_000)
    loading = false
    await Promise.all(clients)
    const stopAt = at()
    const down = await waitFor('scaled back down', () => stack.service(serviceId)?.replicas === 1 && stack.service(serviceId), 120_000, 100)
    console.log(`autoscale ${targetName}: load stopped at ${stopAt}; back to ${down.replicas} replica at ${at()} (${down.history.at(-1)?.detail})`)
    expect(down.history.some((h) => h.cause === 'autoscale down')).toBe(true)
    // never below what is paid for, never above the tier's maximum
    const counts = down.history.filter((h) => h.cause.startsWith('autoscale')).map((h) => Number(/→ (\d+)/.exec(h.detail ?? '')?.[1]))
    expect(Math.min(...counts)).toBeGreaterThanOrEqual(1)
    expect(Math.max(...counts)).toBeLessThanOrEqual(3)
    expect(Number(down.ledger.replicaHours)).toBeGreaterThan(0)
    await chain.customer.terminate(serviceId)
    await waitFor('closed', () => stack.service(serviceId)?.state === 'closed', 60_000)
  }
}
