/**
 * The customer's endpoint on an SSH host (`[providers.ssh.endpoint]`), end to end on a real anvil chain and a real
 * OpenSSH server: the URL recorded when the service became active — a balancer in the daemon over the replicas on
 * the host — still answers after a tier change to more replicas (and balances over them), after the loop restarts a
 * killed replica, and after payment expiry → zero → top-up; it is released when the service closes.
 */
import { get } from 'node:http'
import { createServer } from 'node:net'
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { sshdMissing, startSshd, type Sshd } from '../helpers/sshd.js'
import { exited, processesOf, startInProcess, startStack, waitFor, type Stack } from '../helpers/stack.js'

const noSshd = sshdMissing()
if (noSshd) test.skip(`real sshd suites: ${noSshd}`, () => undefined)

const RATE = 1000n // tier 0: base units per second

type Info = { deployment: string; replica: number; pid: number; starts: number }

/** GET / on a fresh connection (the balancer picks a replica per connection). */
function info(endpoint: string): Promise<Info> {
  return new Promise((resolve, reject) => {
    const req = get(`${endpoint}/`, { agent: false, timeout: 5_000 }, (res) => {
      let body = ''
      res.on('data', (d) => (body += d))
      res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(body) as Info) : reject(new Error(`HTTP ${res.statusCode}`))))
    })
    req.on('error', reject)
    req.on('timeout', () => req.destroy(new Error('timeout')))
  })
}

async function pidsBehind(endpoint: string, n = 12): Promise<Set<number>> {
  const pids = new Set<number>()
  for (let i = 0; i < n; i++) pids.add((await info(endpoint)).pid)
  return pids
}

/** True when something listens on the port. */
function bound(port: number): Promise<boolean> {
  const s = createServer()
  return new Promise((resolve) => {
    s.once('error', () => resolve(true))
    s.listen({ host: '127.0.0.1', port, exclusive: true }, () => s.close(() => resolve(false)))
  })
}

describe.skipIf(!!noSshd)('e2e: stable endpoint (SSH target)', () => {
  let stack: Stack
  let sshd: Sshd
  let d: Awaited<ReturnType<typeof startInProcess>>
  beforeAll(async () => {
    sshd = await startSshd()
    // below the ephemeral ports (32768+) and apart from the local stacks' ranges (22000-31499)
    const base = 12_000 + Math.floor(Math.random() * 80) * 100
    stack = await startStack({
      extra: {
        providers: {
          local: { enabled: false },
          ssh: {
            // the balancers' ports on the daemon's machine, apart from the replicas' ports on the host
            endpoint: { listen: '127.0.0.1', port_range: [base, base + 49] },
            hosts: [
              {
                name: 'rack-1',
                address: sshd.address,
                port: sshd.port,
                user: sshd.user,
                private_key: 'file:keys/rack-1',
                host_key: sshd.hostKey,
                vcpu: 4,
                memory_gib: 4,
                storage_gib: 20,
                hourly_usd: '0.02',
                port_range: [base + 50, base + 99],
                remote_root: '/tmp/bpo-e2e-ssh-ep',
              },
            ],
          },
        },
      },
    })
    ;((stack.doc.providers as { ssh: { hosts: Array<{ remote_root: string }> } }).ssh.hosts[0]!).remote_root = `/tmp/bpo-e2e-ssh-ep-${stack.operatorId}`
    mkdirSync(join(stack.dataDir, 'keys'), { recursive: true })
    writeFileSync(join(stack.dataDir, 'keys', 'rack-1'), sshd.privateKey, { mode: 0o600 })
    d = await startInProcess(stack)
  })
  afterAll(async () => {
    await d?.stop()
    await stack?.stop()
    await sshd?.stop()
  })

  test('default: one endpoint across a scale-up, a restarted replica and zero → back; released at close', { timeout: 180_000 }, async () => {
    const { chain } = stack
    const blueprintId = await stack.registerDemo({ name: 'stable' })
    await chain.customer.mint(10_000_000n)
    const { serviceId } = await chain.requestService({ blueprintId, tier: 0, deposit: 600n * RATE, ttlSeconds: 86_400n })
    const dep = `bp-${chain.chainId}-${serviceId}`
    const active = await waitFor('active', () => stack.service(serviceId)?.state === 'active' && stack.service(serviceId), 60_000)
    expect(active.endpoints).toHaveLength(1)
    expect(active.quote!.target).toBe('ssh:rack-1')
    const ep = active.endpoints[0]!
    const port = Number(new URL(ep).port)
    expect(new URL(ep).hostname).toBe('127.0.0.1') // the daemon's balancer, not a replica's own port on the host
    expect((await info(ep)).deployment).toBe(dep)

    // scale-up: a tier with two replicas, the same endpoint, requests reach both
    await chain.customer.changeTier(serviceId, 1)
    await waitFor('two replicas', () => stack.service(serviceId)?.replicas === 2 && processesOf(dep, stack.operatorId).length === 2 && stack.service(serviceId)?.state === 'active')
    expect(stack.service(serviceId)!.endpoints).toEqual([ep])
    expect((await pidsBehind(ep)).size).toBe(2)

    // a killed replica: the endpoint keeps answering (failover), it is restarted, both serve again. Who restarts it
    // is a race: the host's supervisor after 1 s, or the daemon's loop when two ticks in a row saw it down first
    const [victim] = processesOf(dep, stack.operatorId)
    process.kill(victim!, 'SIGKILL')
    await exited(victim!) // a connection that lands on it while it dies is lost with it
    for (let i = 0; i < 4; i++) expect((await info(ep)).pid).not.toBe(victim)
    await waitFor(
      'replica restarted',
      () => {
        const pids = processesOf(dep, stack.operatorId)
        return pids.length === 2 && !pids.includes(victim!)
      },
      30_000,
    )
    const replicasDir = join(`/tmp/bpo-e2e-ssh-ep-${stack.operatorId}`, 'ops', stack.operatorId, dep, 'replicas')
    const supervisorRestarts = readdirSync(replicasDir).filter((i) => existsSync(join(replicasDir, i, 'restarts'))).length
    expect(supervisorRestarts + stack.service(serviceId)!.health.restarts).toBeGreaterThan(0)
    expect(stack.service(serviceId)!.endpoints).toEqual([ep])
    await waitFor('both replicas behind the endpoint', async () => (await pidsBehind(ep)).size === 2, 15_000)

    // payment expires → zero: the port stays reserved and refuses to serve; top-up → back on the same endpoint
    await stack.travel(7_200n)
    await waitFor('scaled-to-zero', () => stack.service(serviceId)?.state === 'scaled-to-zero')
    await waitFor('no processes', () => processesOf(dep, stack.operatorId).length === 0)
    await expect(info(ep)).rejects.toThrow()
    expect(await bound(port)).toBe(true)
    await chain.customer.topUp(serviceId, 3_600n * 2n * RATE)
    const back = await waitFor('active again', () => {
      const s = stack.service(serviceId)
      return s?.state === 'active' && s.history.some((h) => h.cause === 'top-up') && s
    })
    expect(back.endpoints).toEqual([ep])
    expect((await info(ep)).deployment).toBe(dep)
    await waitFor('both replicas behind the endpoint', async () => (await pidsBehind(ep)).size === 2, 15_000)

    // closed: the port is released
    await chain.customer.terminate(serviceId)
    await waitFor('closed', () => stack.service(serviceId)?.state === 'closed')
    expect(await bound(port)).toBe(false)
  })
})
