/**
 * The spine's lifecycle with a blueprint published only as an image, on the local target: podman on this machine
 * pulls it by digest from a real registry on 127.0.0.1 — active → expiry → zero → top-up → back (data kept) → TTL →
 * no container, no volume left; and an image whose digest the registry does not have is refused and refunded.
 * Skipped with the reason when podman or the registry is not installed.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { registryUnavailable, startLocalRegistry, type LocalRegistry } from '../helpers/registry.js'
import { startInProcess, startStack, waitFor, type Stack } from '../helpers/stack.js'

const RATE = 1000n
const missing = registryUnavailable()

describe.skipIf(!!missing)('e2e: lifecycle of a container source on the local target', () => {
  let reg: LocalRegistry
  let stack: Stack
  let d: Awaited<ReturnType<typeof startInProcess>>
  const saved: Record<string, string | undefined> = {}
  beforeAll(async () => {
    reg = await startLocalRegistry()
    // the daemon's podman uses the registry helper's storage and (insecure, local) registry settings
    for (const [k, v] of Object.entries(reg.env)) {
      saved[k] = process.env[k]
      process.env[k] = v
    }
    stack = await startStack({ extra: { http: { enabled: true, listen: '127.0.0.1:0' } } })
    d = await startInProcess(stack)
    // the daemon awaited the podman check at start-up (daemon/providers.ts)
    expect(d.daemon.targets.byName('local')!.provisioner.capabilities?.().container).toMatchObject({ ok: true })
  }, 120_000)
  afterAll(async () => {
    await d?.stop()
    await stack?.stop()
    await reg?.stop()
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k]
      else process.env[k] = v
    }
  })

  const owned = async (what: 'ps' | 'volume', dep: string) => {
    const args = what === 'ps' ? ['ps', '-a'] : ['volume', 'ls']
    const out = (await reg.podman([...args, '--filter', `label=io.blueprint-operator.owner=${stack.operatorId}`, '--filter', `label=io.blueprint-operator.deployment=${dep}`, '--format', what === 'ps' ? '{{.Names}}' : '{{.Name}}'])).stdout
    return out.split('\n').filter(Boolean)
  }
  const register = (digest: string) =>
    stack.chain.registerBlueprint({
      name: 'echo-image',
      sources: [{ kind: 'container', image: reg.image, digest }],
      requirements: { vcpuMilli: 250, memoryMiB: 128, storageGiB: 0, ports: [8080] },
      pricePerHour: [3_600_000n, 7_200_000n, 14_400_000n],
    })

  test('default: /api/targets shows the local target takes container sources, and with which podman', async () => {
    const targets = (await (await fetch(`${d.daemon.http!.url}/api/targets`)).json()) as Array<{ name: string; sourceKinds: string[]; capabilities?: { container?: { ok: boolean; detail?: string } } }>
    const local = targets.find((t) => t.name === 'local')!
    expect(local.sourceKinds).toContain('container')
    expect(local.capabilities?.container).toMatchObject({ ok: true, detail: expect.stringMatching(/^podman \d/) })
  })

  test('default: active → expiry → zero → top-up → back → TTL → no container, no volume', async () => {
    const { chain } = stack
    const blueprintId = await register(reg.digest)
    await chain.customer.mint(10_000_000n)
    const customer0 = await chain.customer.balanceOf()
    const D = 60n * RATE
    const t0 = performance.now()
    const { serviceId } = await chain.customer.requestService({ blueprintId, operator: chain.operatorAddress, tier: 0, ttlSeconds: 600n, deposit: D })
    const dep = `bp-${chain.chainId}-${serviceId}`
    const active = await waitFor('active', () => stack.service(serviceId)?.state === 'active' && stack.service(serviceId), 90_000)
    if (process.env.BPO_TEST_TRACE) console.log(`local container: ServiceInitiated → active in ${Math.round(performance.now() - t0)} ms`)
    expect(active.quote!.target).toBe('local')
    const ep = active.endpoints[0]!
    expect(ep).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    expect(await (await fetch(`${ep}/starts`)).text()).toBe('1\n')
    expect(await owned('ps', dep)).toHaveLength(1)
    expect(await owned('volume', dep)).toHaveLength(1)

    await stack.travel(120n)
    await waitFor('scaled-to-zero', () => stack.service(serviceId)?.state === 'scaled-to-zero', 30_000)
    await waitFor('no container', async () => (await owned('ps', dep)).length === 0, 30_000)
    expect(await owned('volume', dep)).toHaveLength(1) // the data is kept

    const T = 1000n * RATE
    await chain.customer.topUp(serviceId, T)
    const back = await waitFor('active again', () => {
      const s = stack.service(serviceId)
      return s?.state === 'active' && s.history.some((h) => h.cause === 'top-up') && s
    }, 90_000)
    expect(await (await fetch(`${back.endpoints[0]!}/starts`)).text()).toBe('2\n') // the volume survived scale to zero

    await stack.travel(700n)
    await waitFor('closed', () => stack.service(serviceId)?.state === 'closed', 60_000)
    expect(await owned('ps', dep)).toEqual([])
    expect(await owned('volume', dep)).toEqual([])
    expect((await d.daemon.targets.byName('local')!.provisioner.listOwned()).filter((r) => r.deploymentId === dep)).toEqual([])
    const [refund] = await stack.refunds(serviceId)
    expect(refund!.reason).toBe('TTL_REACHED')
    expect(await chain.customer.balanceOf()).toBe(customer0 - D - T + refund!.amount)
  })

  test('error: an image digest the registry does not have is refused and the deposit refunded', async () => {
    const { chain } = stack
    const blueprintId = await register(`sha256:${'e'.repeat(64)}`)
    const D = 60n * RATE
    await chain.customer.mint(D)
    const customer0 = await chain.customer.balanceOf()
    const { serviceId } = await chain.customer.requestService({ blueprintId, operator: chain.operatorAddress, tier: 0, ttlSeconds: 600n, deposit: D })
    const dep = `bp-${chain.chainId}-${serviceId}`
    const s = await waitFor('refunded', () => stack.service(serviceId)?.state === 'refunded' && stack.service(serviceId), 90_000)
    expect(s.reason).toBe('ARTIFACT_DIGEST_MISMATCH')
    expect(await stack.refunds(serviceId)).toEqual([{ amount: D, reason: 'ARTIFACT_DIGEST_MISMATCH' }])
    expect(await chain.customer.balanceOf()).toBe(customer0)
    expect(await owned('ps', dep)).toEqual([])
    expect(await owned('volume', dep)).toEqual([])
  })
})

if (missing) {
  describe('e2e: lifecycle of a container source on the local target', () => {
    test.skip(`live container tests: ${missing}`, () => undefined)
  })
}
