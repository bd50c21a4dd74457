/**
 * Buying from Hetzner Cloud, end to end at the daemon level: a real anvil chain, the daemon with the local target AND
 * the Hetzner target (its undici client pointed at the fake Hetzner API of test/fakes/, whose servers are real sshd
 * hosts in network namespaces booted from the user data), and a two-hour-old catalog in which Hetzner's cx22 is the
 * cheapest offer — so placement confirms the price live (GET /pricing, EUR → USD) before it buys.
 * ServiceInitiated → placement picks Hetzner → POST /servers (+ a Volume, a Firewall) → SSH → the workload answers →
 * expiry → the server is deleted, its Volume kept → top-up → a new server with the same Volume (data kept) → TTL →
 * the fake holds no server, volume or firewall of the deployment.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { usd } from '../../core/money.js'
import type { Offer } from '../../core/offer.js'
import { writeCacheFile } from '../../pricing/catalog.js'
import { startFakeHetzner, type FakeHetzner } from '../fakes/hetzner-api.js'
import { canNetns } from '../helpers/cloudStack.js'
import { generateKeyPair } from '../helpers/sshd.js'
import { startInProcess, startStack, waitFor, type Stack } from '../helpers/stack.js'

const RATE = 1000n
const TOKEN = 'fake-hcloud-token-e2e-never-logged-42'

const hetznerOffer = (instanceType: string, region: string, vcpu: number, memoryGiB: number, hourly: string): Offer => ({
  provider: 'hetzner',
  region,
  instanceType,
  vcpu,
  memoryGiB,
  gpu: { count: 0 },
  includedStorageGiB: 40,
  hourlyUsd: usd(hourly),
  storageUsdPerGiBMonth: usd('0.05'),
  source: 'hetzner',
  // older than the placement's one-hour max age: the price is confirmed live before buying
  fetchedAt: Date.now() - 2 * 3_600_000,
})

describe.skipIf(!canNetns)('e2e: buying from Hetzner Cloud (fake API booting real machines)', () => {
  let fake: FakeHetzner
  let stack: Stack
  let dir: string
  let d: Awaited<ReturnType<typeof startInProcess>>
  const serversOf = (dep: string) => [...fake.servers.values()].filter((s) => s.labels['bpo-deployment'] === dep && s.status !== 'deleting')
  const volumesOf = (dep: string) => [...fake.volumes.values()].filter((v) => v.labels['bpo-deployment'] === dep)
  const firewallsOf = (dep: string) => [...fake.firewalls.values()].filter((f) => f.labels['bpo-deployment'] === dep)

  beforeAll(async () => {
    fake = await startFakeHetzner({ token: TOKEN })
    dir = mkdtempSync(join(tmpdir(), 'bpo-hetzner-e2e-'))
    const login = await generateKeyPair(dir)
    writeFileSync(join(dir, 'login_key'), login.privateKey, { mode: 0o600 })
    process.env.BPO_TEST_HCLOUD_TOKEN = TOKEN
    const cache = join(dir, 'pricing')
    // the catalog: cx22 at 0.0059 USD/h (the fake's live price is 0.0060 EUR/h = 0.00648 USD/h), cx32 dearer
    await writeCacheFile(cache, 'hetzner', Date.now() - 2 * 3_600_000, [hetznerOffer('cx22', 'fsn1', 2, 4, '0.0059'), hetznerOffer('cx32', 'fsn1', 4, 8, '0.0120')])
    stack = await startStack({ loopMs: 500, attempts: 1 })
    const local = (stack.doc.providers as Record<string, unknown>).local as Record<string, unknown>
    local.hourly_usd = '0.05'
    stack.doc.providers = {
      ...(stack.doc.providers as object),
      hetzner: {
        token: 'env:BPO_TEST_HCLOUD_TOKEN',
        locations: ['fsn1'],
        endpoint: fake.url,
        ssh_key: `file:${join(dir, 'login_key')}`,
        ssh_source_cidr: '10.0.0.0/8',
        boot_timeout_ms: 240_000,
        api_timeout_ms: 10_000,
      },
    }
    stack.doc.pricing = { sources: ['hetzner'], cache_dir: cache }
    stack.doc.placement = { confirm_price_older_than_ms: 3_600_000 }
    d = await startInProcess(stack)
  }, 120_000)
  afterAll(async () => {
    await d?.stop()
    await stack?.stop()
    await fake?.stop()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  test('default: placement buys Hetzner at the live price → active over SSH → zero (server deleted, Volume kept) → top-up → back, data kept → TTL → nothing left', { timeout: 900_000 }, async () => {
    const { chain } = stack
    const blueprintId = await stack.registerDemo()
    await chain.customer.mint(10_000_000n)
    const t0 = Date.now()
    const { serviceId } = await chain.customer.requestService({ blueprintId, operator: chain.operatorAddress, tier: 0, ttlSeconds: 900n, deposit: 90n * RATE })
    const dep = `bp-${chain.chainId}-${serviceId}`

    const active = await waitFor('active on Hetzner', () => stack.service(serviceId)?.state === 'active' && stack.service(serviceId), 300_000, 200)
    console.log(`ServiceInitiated → active on the fake Hetzner: ${((Date.now() - t0) / 1000).toFixed(1)} s`)
    // bought at the live price (0.0060 EUR × 1.08), not the stale catalog's 0.0059
    expect(active.quote).toMatchObject({ provider: 'hetzner', target: 'hetzner', region: 'fsn1', instanceType: 'cx22', priceConfirmed: true, hourlyUsd: '0.00648' })
    expect(active.decision!.winner).toMatchObject({ target: 'hetzner', instanceType: 'cx22' })
    expect(fake.calls).toContain('GET /v1/pricing')
    const [server] = serversOf(dep)
    expect(serversOf(dep)).toHaveLength(1)
    expect(server!.serverType).toBe('cx22')
    expect(volumesOf(dep)).toHaveLength(1)
    expect(firewallsOf(dep)).toHaveLength(1)
    const first = (await (await fetch(`${active.endpoints[0]!}/`)).json()) as { deployment: string; starts: number }
    expect(first.deployment).toBe(dep)

    // payment expires → the server is deleted, its Volume kept (Hetzner bills a stopped server in full)
    await stack.travel(200n)
    await waitFor('scaled-to-zero', () => stack.service(serviceId)?.state === 'scaled-to-zero', 120_000, 200)
    await waitFor('server deleted', () => serversOf(dep).length === 0, 60_000, 200)
    const [kept] = volumesOf(dep)
    expect(kept).toMatchObject({ server: null })

    // top-up → a new server with the same Volume attached; the data directory survived
    await chain.customer.topUp(serviceId, 1_000n * RATE)
    const back = await waitFor('active again', () => {
      const s = stack.service(serviceId)
      return s?.state === 'active' && s.history.some((h) => h.cause === 'top-up') && s
    }, 300_000, 200)
    expect(serversOf(dep).map((s) => s.volumes)).toEqual([[kept!.id]])
    const again = (await (await fetch(`${back.endpoints[0]!}/`)).json()) as { starts: number }
    expect(again.starts).toBe(first.starts + 1)

    // TTL → destroyed: no server, volume or firewall left; the cloud cost is on the ledger
    await stack.travel(1_000n)
    const closed = await waitFor('closed', () => stack.service(serviceId)?.state === 'closed' && stack.service(serviceId), 120_000, 200)
    expect(closed.reason).toBe('TTL_REACHED')
    expect(Number(closed.ledger.cloudCostUsd)).toBeGreaterThan(0)
    await waitFor('nothing left', () => serversOf(dep).length === 0 && volumesOf(dep).length === 0 && firewallsOf(dep).length === 0, 60_000, 200)
    expect(await d.daemon.targets.byName('hetzner')!.provisioner.listOwned()).toEqual([])
  })
})
