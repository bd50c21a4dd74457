/**
 * Crash safety: the daemon runs as a real child process (`blueprint-operator run`) and is SIGKILLed mid-provision
 * and mid-loop. A restarted daemon resumes every service: no duplicate process, no missed or repeated event, no
 * double refund. SIGTERM drains and exits 0.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { readFileSync } from 'node:fs'
import { demoServicePath, processesOf, startChild, startStack, waitFor, type Stack } from '../helpers/stack.js'

const RATE = 1000n
const t0 = Date.now()
const step = (n: number) => process.env.BPO_TEST_TRACE && console.log(`step ${n} at ${Date.now() - t0} ms`)

describe('e2e: restart', () => {
  let stack: Stack
  let hold = true
  const held: ServerResponse[] = []
  let child: ReturnType<typeof startChild> | undefined

  beforeAll(async () => {
    stack = await startStack({
      loopMs: 300,
      // the first downloads hang until released: the daemon is killed while provisioning
      intercept: (name: string, _req: IncomingMessage, res: ServerResponse) => {
        if (!name.startsWith('demo-service') || !hold) return false
        held.push(res)
        return true
      },
    })
  })
  afterAll(async () => {
    child?.child.kill('SIGKILL')
    for (const r of held) r.destroy()
    await stack?.stop()
  })

  const kill = async () => {
    const c = child!
    c.child.kill('SIGKILL')
    await c.exited
    child = undefined
  }

  test('behavior: SIGKILL mid-provision and mid-loop — resumed without duplicates, nothing missed, one refund', { timeout: 240_000 }, async () => {
    const { chain } = stack
    const blueprintId = await stack.registerDemo()
    child = startChild(stack)
    await chain.customer.mint(10_000_000n)
    const customer0 = await chain.customer.balanceOf()
    const operator0 = await chain.customer.balanceOf(chain.operatorAddress)
    const D = 60n * RATE
    const { serviceId } = await chain.customer.requestService({ blueprintId, operator: chain.operatorAddress, tier: 0, ttlSeconds: 600n, deposit: D })
    const dep = `bp-${chain.chainId}-${serviceId}`

    step(1)
    // 1. killed while the artifact download hangs
    await waitFor('provisioning', () => stack.service(serviceId)?.state === 'provisioning' && held.length > 0, 30_000)
    await kill()
    for (const r of held.splice(0)) r.destroy()
    hold = false

    step(2)
    // 2. restarted: provisioning resumes (idempotent), killed again as soon as a replica runs
    child = startChild(stack)
    await waitFor('a replica', () => processesOf(dep, stack.operatorId).length > 0, 30_000, 20)
    await kill()

    step(3)
    // 3. restarted: adopts the running replica instead of starting a second one
    child = startChild(stack)
    const active = await waitFor('active', () => stack.service(serviceId)?.state === 'active' && stack.service(serviceId), 30_000)
    expect((await fetch(active.endpoints[0]!)).status).toBe(200)
    expect(processesOf(dep, stack.operatorId)).toHaveLength(1)
    expect(await stack.events(serviceId, 'ServiceActivated')).toHaveLength(1)

    step(4)
    // 4. mid-loop: payment expires and the daemon is killed at once
    await stack.travel(120n)
    await kill()
    child = startChild(stack)
    await waitFor('scaled-to-zero', () => stack.service(serviceId)?.state === 'scaled-to-zero', 30_000)
    await waitFor('no processes', () => processesOf(dep, stack.operatorId).length === 0)

    step(5)
    // 5. a top-up while the daemon is down is not missed
    await kill()
    const T = 1000n * RATE
    const topUp = await chain.customer.topUp(serviceId, T)
    const tt = (await chain.publicClient.getBlock({ blockNumber: (await chain.publicClient.getTransactionReceipt({ hash: topUp })).blockNumber })).timestamp
    child = startChild(stack)
    await waitFor('active after top-up', () => {
      const s = stack.service(serviceId)
      return s?.state === 'active' && s.history.some((h) => h.cause === 'top-up')
    }, 30_000)
    expect(processesOf(dep, stack.operatorId)).toHaveLength(1)

    step(6)
    // 6. TTL, with a kill as the daemon starts terminating
    const { endsAt } = (await chain.publicClient.readContract({ address: chain.addresses.escrow, abi: (await import('../../chain/contracts/abi.js')).serviceEscrowAbi, functionName: 'getService', args: [serviceId] })) as { endsAt: bigint }
    await stack.travel(700n)
    await waitFor('terminating or closed', () => ['terminating', 'closed'].includes(stack.service(serviceId)?.state ?? ''), 30_000, 20)
    await kill()
    child = startChild(stack)
    await waitFor('closed', () => stack.service(serviceId)?.state === 'closed', 30_000)
    expect(processesOf(dep, stack.operatorId)).toHaveLength(0)

    // exactly one refund; money to the base unit
    const refunded = T - RATE * (endsAt - tt)
    expect(await stack.refunds(serviceId)).toEqual([{ amount: refunded, reason: 'TTL_REACHED' }])
    expect(await chain.customer.balanceOf()).toBe(customer0 - D - T + refunded)
    expect(await chain.customer.balanceOf(chain.operatorAddress)).toBe(operator0 + D + RATE * (endsAt - tt))
    // every event acted on once: the ledger counts each payment once
    await waitFor('ledger', () => stack.service(serviceId)?.ledger.refunded === refunded.toString())
    expect(stack.service(serviceId)!.ledger.paid).toBe((D + T).toString())
    const history = stack.service(serviceId)!.history.map((h) => h.to)
    expect(history.filter((s) => s === 'closed')).toHaveLength(1)
    expect(history.filter((s) => s === 'requested')).toHaveLength(1)

    // SIGTERM drains and exits 0
    const c = child!
    c.child.kill('SIGTERM')
    expect(await c.exited).toBe(0)
    child = undefined
  })

  test('behavior: SIGTERM while provisioning exits 0 without rolling back; the next start finishes the job', { timeout: 180_000 }, async () => {
    const { chain } = stack
    hold = true
    // a different artifact (another digest), so the download is not served from the cache of the first test
    stack.artifacts.put('demo-service-2', `${readFileSync(demoServicePath, 'utf8')}\n// second build\n`)
    const blueprintId = await stack.registerDemo({ name: 'sigterm', url: stack.artifacts.urlOf('demo-service-2'), sha256: stack.artifacts.sha256('demo-service-2') })
    child = startChild(stack)
    const { serviceId } = await chain.requestService({ blueprintId, deposit: 3_600_000n })
    await waitFor('provisioning', () => stack.service(serviceId)?.state === 'provisioning' && held.length > 0, 30_000)
    const c = child!
    c.child.kill('SIGTERM')
    expect(await c.exited).toBe(0)
    child = undefined
    expect(stack.service(serviceId)!.state).toBe('provisioning')
    expect(await stack.refunds(serviceId)).toEqual([])
    for (const r of held.splice(0)) r.destroy()
    hold = false
    child = startChild(stack)
    await waitFor('active', () => stack.service(serviceId)?.state === 'active', 60_000)
    expect(await stack.refunds(serviceId)).toEqual([])
    expect(processesOf(`bp-${chain.chainId}-${serviceId}`, stack.operatorId)).toHaveLength(1)
  })
})
