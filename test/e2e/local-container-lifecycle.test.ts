/**
 * The spine's lifecycle with a blueprint published only as an image, on the local target: podman on this machine
 * pulls it by digest from a real registry on 127.0.0.1 — active → expiry → zero → top-up → back (data kept) → TTL →
 * no container, no volume left; and an image whose digest the registry does not have is refused and refunded. Nothing
 * of the daemon (its environment, TOML, key file, state) is visible inside a replica. A podman that cannot run
 * containers keeps `container` out of the local target, says why in /api/status, and a blueprint published only as an
 * image is refunded. Skipped with the reason when podman or the registry is not installed.
 */
import { execFile } from 'node:child_process'
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { stringify } from 'smol-toml'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { registryUnavailable, startLocalRegistry, type LocalRegistry } from '../helpers/registry.js'
import { startInProcess, startStack, waitFor, type Stack } from '../helpers/stack.js'

const RATE = 1000n
const missing = registryUnavailable()
/** A value only the daemon's process holds: it must never reach a replica. */
const SENTINEL = `bpo-daemon-only-${Math.random().toString(36).slice(2, 10)}`

/** Set process variables for the daemon started in this process; returns the restore function. */
function setEnv(vars: Record<string, string>): () => void {
  const saved: Record<string, string | undefined> = {}
  for (const [k, v] of Object.entries(vars)) {
    saved[k] = process.env[k]
    process.env[k] = v
  }
  return () => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k]
      else process.env[k] = v
    }
  }
}

describe.skipIf(!!missing)('e2e: lifecycle of a container source on the local target', () => {
  let reg: LocalRegistry
  let stack: Stack
  let d: Awaited<ReturnType<typeof startInProcess>>
  let restoreEnv: (() => void) | undefined
  beforeAll(async () => {
    reg = await startLocalRegistry()
    stack = await startStack({ extra: { http: { enabled: true, listen: '127.0.0.1:0' } } })
    // what an operator's machine holds: the TOML and a key file in the data dir, the key in the daemon's environment
    writeFileSync(join(stack.dataDir, 'operator.toml'), stringify(stack.doc), { mode: 0o600 })
    mkdirSync(join(stack.dataDir, 'keys'), { recursive: true })
    writeFileSync(join(stack.dataDir, 'keys', 'operator.key'), stack.operatorKey, { mode: 0o600 })
    // the daemon's podman uses the registry helper's storage and (insecure, local) registry settings
    restoreEnv = setEnv({ ...reg.env, BPO_TEST_OPERATOR_KEY: stack.operatorKey, BPO_TEST_DAEMON_SECRET: SENTINEL })
    d = await startInProcess(stack)
    // the daemon awaited the podman check at start-up (daemon/providers.ts)
    expect(d.daemon.targets.byName('local')!.provisioner.capabilities?.().container).toMatchObject({ ok: true })
  }, 120_000)
  afterAll(async () => {
    await d?.stop()
    await stack?.stop()
    await reg?.stop()
    restoreEnv?.()
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

  test('default: /api/status says the local target runs container sources, and with which podman', async () => {
    const st = (await (await fetch(`${d.daemon.http!.url}/api/status`)).json()) as { capabilities?: Record<string, { container?: unknown }> }
    expect(st.capabilities?.local?.container).toEqual({ ok: true, detail: expect.stringMatching(/^podman \d/) })
  })

  test('behavior: nothing of the daemon is visible inside a replica — environment, TOML, key file, state', async () => {
    const { chain } = stack
    const blueprintId = await register(reg.digest)
    const D = 600n * RATE
    await chain.customer.mint(D)
    const { serviceId } = await chain.customer.requestService({ blueprintId, operator: chain.operatorAddress, tier: 0, ttlSeconds: 3600n, deposit: D })
    const dep = `bp-${chain.chainId}-${serviceId}`
    await waitFor('active', () => stack.service(serviceId)?.state === 'active', 90_000)
    const [name] = await owned('ps', dep)
    const inside = (args: string[]) => podmanExit(reg, ['exec', name!, '/bin/busybox', ...args])

    // the daemon's process holds the key and the sentinel; the replica's processes do not, nor any name of ours
    expect(process.env.BPO_TEST_OPERATOR_KEY).toBe(stack.operatorKey)
    for (const env of [(await inside(['env'])).stdout, (await inside(['cat', '/proc/1/environ'])).stdout.replaceAll('\0', '\n')]) {
      const names = env.split('\n').filter(Boolean).map((l) => l.slice(0, l.indexOf('=')))
      expect(names.filter((n) => !['PATH', 'HOME', 'HOSTNAME', 'TERM', 'container'].includes(n)).sort()).toEqual(['BLUEPRINT_ID', 'DATA_DIR', 'DEPLOYMENT_ID', 'HOST', 'PORT', 'REPLICA_INDEX', 'SERVICE_ID'])
      expect(env).not.toContain(SENTINEL)
      expect(env.toLowerCase()).not.toContain(stack.operatorKey.slice(2).toLowerCase())
    }
    // the TOML, the key file and the state exist on the host and are nowhere inside
    for (const f of [stack.dataDir, join(stack.dataDir, 'operator.toml'), join(stack.dataDir, 'keys', 'operator.key'), join(stack.dataDir, 'state.sqlite'), process.cwd()]) {
      expect(existsSync(f), f).toBe(true)
      expect((await inside(['test', '-e', f])).code, f).toBe(1)
    }
    const mounts = (await inside(['cat', '/proc/self/mountinfo'])).stdout
    expect(mounts).toMatch(/ \/data /)
    expect(mounts).not.toContain(stack.dataDir)
    expect(mounts).not.toContain(process.cwd())

    await chain.customer.terminate(serviceId)
    await waitFor('closed', () => stack.service(serviceId)?.state === 'closed', 60_000)
    expect(await owned('ps', dep)).toEqual([])
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

describe.skipIf(!!missing)('e2e: the local target where podman cannot run containers', () => {
  let stack: Stack
  let d: Awaited<ReturnType<typeof startInProcess>>
  let restoreEnv: (() => void) | undefined
  beforeAll(async () => {
    stack = await startStack({ extra: { http: { enabled: true, listen: '127.0.0.1:0' } } })
    // a real podman that refuses: its configuration names an OCI runtime that does not exist
    const conf = join(stack.dataDir, 'broken-containers.conf')
    writeFileSync(conf, '[engine]\nruntime = "bpo-no-such-runtime"\n')
    restoreEnv = setEnv({ CONTAINERS_CONF: conf })
    d = await startInProcess(stack)
  }, 120_000)
  afterAll(async () => {
    await d?.stop()
    await stack?.stop()
    restoreEnv?.()
  })

  test('error: container stays out of the local target, /api/status says why, an image-only blueprint is refunded', async () => {
    const st = (await (await fetch(`${d.daemon.http!.url}/api/status`)).json()) as { capabilities?: Record<string, { container?: { ok: boolean; reason?: string } }> }
    expect(st.capabilities?.local?.container).toEqual({ ok: false, reason: expect.stringMatching(/^podman version failed: .*"bpo-no-such-runtime" not found/) })
    const targets = (await (await fetch(`${d.daemon.http!.url}/api/targets`)).json()) as Array<{ name: string; sourceKinds: string[] }>
    expect(targets.find((t) => t.name === 'local')!.sourceKinds).not.toContain('container')

    const { chain } = stack
    const blueprintId = await chain.registerBlueprint({
      name: 'image-only',
      sources: [{ kind: 'container', image: '127.0.0.1:5000/bpo-echo', digest: `sha256:${'c'.repeat(64)}` }],
      requirements: { vcpuMilli: 250, memoryMiB: 128, storageGiB: 0, ports: [8080] },
      pricePerHour: [3_600_000n, 7_200_000n, 14_400_000n],
    })
    const D = 60n * RATE
    await chain.customer.mint(D)
    const customer0 = await chain.customer.balanceOf()
    const { serviceId } = await chain.customer.requestService({ blueprintId, operator: chain.operatorAddress, tier: 0, ttlSeconds: 600n, deposit: D })
    const s = await waitFor('refunded', () => stack.service(serviceId)?.state === 'refunded' && stack.service(serviceId), 60_000)
    expect(s.reason).toBe('NO_FEASIBLE_OFFER')
    expect(s.problems).toEqual(expect.arrayContaining([expect.stringMatching(/local runs no container sources/)]))
    expect(await stack.refunds(serviceId)).toEqual([{ amount: D, reason: 'NO_FEASIBLE_OFFER' }])
    expect(await chain.customer.balanceOf()).toBe(customer0)
  })
})

/** podman with the registry helper's settings; resolves with the exit code instead of throwing on a non-zero one. */
async function podmanExit(reg: LocalRegistry, args: string[]): Promise<{ code: number; stdout: string }> {
  try {
    const r = await promisify(execFile)('podman', args, { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', ...reg.env } })
    return { code: 0, stdout: r.stdout }
  } catch (err) {
    const e = err as { code?: unknown; stdout?: string }
    if (typeof e.code !== 'number') throw err
    return { code: e.code, stdout: e.stdout ?? '' }
  }
}

if (missing) {
  describe('e2e: lifecycle of a container source on the local target', () => {
    test.skip(`live container tests: ${missing}`, () => undefined)
  })
}
