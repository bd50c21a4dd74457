/**
 * The customer's endpoint, end to end on a real anvil chain with the local target: the URL recorded when the service
 * became active still answers after a tier change to more replicas (and balances over them), after the loop restarts
 * a killed replica, and after payment expiry → zero → top-up; it is released when the service closes.
 */
import { get } from 'node:http'
import { createServer } from 'node:net'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { exited, processesOf, startInProcess, startStack, waitFor, type Stack } from '../helpers/stack.js'

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

describe('e2e: stable endpoint (local target)', () => {
  let stack: Stack
  let d: Awaited<ReturnType<typeof startInProcess>>
  beforeAll(async () => {
    stack = await startStack()
    d = await startInProcess(stack)
  })
  afterAll(async () => {
    await d?.stop()
    await stack?.stop()
  })

  test('default: one endpoint across a scale-up, a restarted replica and zero → back; released at close', async () => {
    const { chain } = stack
    const blueprintId = await stack.registerDemo({ name: 'stable' })
    await chain.customer.mint(10_000_000n)
    const { serviceId } = await chain.requestService({ blueprintId, tier: 0, deposit: 600n * RATE, ttlSeconds: 86_400n })
    const dep = `bp-${chain.chainId}-${serviceId}`
    const active = await waitFor('active', () => stack.service(serviceId)?.state === 'active' && stack.service(serviceId))
    expect(active.endpoints).toHaveLength(1)
    const ep = active.endpoints[0]!
    const port = Number(new URL(ep).port)
    expect((await info(ep)).deployment).toBe(dep)

    // scale-up: a tier with two replicas, the same endpoint, requests reach both
    await chain.customer.changeTier(serviceId, 1)
    await waitFor('two replicas', () => stack.service(serviceId)?.replicas === 2 && processesOf(dep, stack.operatorId).length === 2 && stack.service(serviceId)?.state === 'active')
    expect(stack.service(serviceId)!.endpoints).toEqual([ep])
    expect((await pidsBehind(ep)).size).toBe(2)

    // a killed replica: the endpoint keeps answering (failover), the loop restarts it, both serve again
    const [victim] = processesOf(dep, stack.operatorId)
    process.kill(victim!, 'SIGKILL')
    await exited(victim!) // a connection that lands on it while it dies is lost with it
    for (let i = 0; i < 4; i++) expect((await info(ep)).pid).not.toBe(victim)
    await waitFor(
      'replica restarted',
      () => {
        const pids = processesOf(dep, stack.operatorId)
        return stack.service(serviceId)!.health.restarts > 0 && pids.length === 2 && !pids.includes(victim!)
      },
      30_000,
    )
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
