/**
 * The spine, end to end on a real anvil chain with real processes and real HTTP: register → request → active →
 * payment expires → zero processes → top-up → back → TTL → destroyed, balances asserted to the base unit.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { processesOf, startInProcess, startStack, waitFor, type Stack } from '../helpers/stack.js'

const RATE = 1000n // base units per second (3_600_000 per hour)

describe('e2e: lifecycle', () => {
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

  test('default: register → request → active → expiry → zero → top-up → back → TTL → destroyed', async () => {
    const { chain } = stack
    const blueprintId = await stack.registerDemo()
    const escrowBefore = await chain.customer.balanceOf(chain.addresses.escrow)
    await chain.customer.mint(10_000_000n)
    const customer0 = await chain.customer.balanceOf()
    const operator0 = await chain.customer.balanceOf(chain.operatorAddress)
    const D = 60n * RATE // one minute
    const { serviceId } = await chain.customer.requestService({ blueprintId, operator: chain.operatorAddress, tier: 0, ttlSeconds: 600n, deposit: D })
    const dep = `bp-${chain.chainId}-${serviceId}`

    // active: the service answers HTTP
    const active = await waitFor('active', () => stack.service(serviceId)?.state === 'active' && stack.service(serviceId))
    expect(active.history.map((h) => h.to)).toEqual(['requested', 'provisioning', 'active'])
    const ep = active.endpoints[0]!
    const first = (await (await fetch(ep)).json()) as { deployment: string }
    expect(first.deployment).toBe(dep)
    expect(processesOf(dep, stack.operatorId)).toHaveLength(1)
    const onchain = await chain.publicClient.readContract({ address: chain.addresses.escrow, abi: (await import('../../chain/contracts/abi.js')).serviceEscrowAbi, functionName: 'getService', args: [serviceId] })
    const endsAt = (onchain as { endsAt: bigint }).endsAt

    // payment expires → zero processes, data kept
    await stack.travel(120n)
    await waitFor('scaled-to-zero', () => stack.service(serviceId)?.state === 'scaled-to-zero')
    await waitFor('no processes', () => processesOf(dep, stack.operatorId).length === 0)
    await expect(fetch(ep, { signal: AbortSignal.timeout(1000) })).rejects.toThrow()

    // top-up → back to the tier's replicas
    const T = 1_000n * RATE
    const topUpHash = await chain.customer.topUp(serviceId, T)
    const tt = (await chain.publicClient.getBlock({ blockNumber: (await chain.publicClient.getTransactionReceipt({ hash: topUpHash })).blockNumber })).timestamp
    const back = await waitFor('active again', () => {
      const s = stack.service(serviceId)
      return s?.state === 'active' && s.history.some((h) => h.cause === 'top-up') && s
    })
    const again = (await (await fetch(back.endpoints[0]!)).json()) as { starts?: number }
    expect(again.starts).toBe(2) // the data directory survived scale-to-zero
    expect(processesOf(dep, stack.operatorId)).toHaveLength(1)

    // TTL → destroyed, earned withdrawn, rest refunded
    await stack.travel(700n)
    const closed = await waitFor('closed', () => stack.service(serviceId)?.state === 'closed' && stack.service(serviceId), 30_000)
    expect(closed.reason).toBe('TTL_REACHED')
    expect(processesOf(dep, stack.operatorId)).toHaveLength(0)
    expect(await d.daemon.targets.byName('local')!.provisioner.listOwned()).toEqual([])

    // money, to the base unit: D fully earned before the top-up; then RATE per second from the top-up to endsAt
    const earned = D + RATE * (endsAt - tt)
    const refunded = T - RATE * (endsAt - tt)
    expect(await chain.customer.balanceOf(chain.operatorAddress)).toBe(operator0 + earned)
    expect(await chain.customer.balanceOf()).toBe(customer0 - D - T + refunded)
    expect(await chain.customer.balanceOf(chain.addresses.escrow)).toBe(escrowBefore)
    expect(await stack.refunds(serviceId)).toEqual([{ amount: refunded, reason: 'TTL_REACHED' }])
    // the daemon's ledger reconciles with the chain, already at closed (counted from the receipts, once)
    expect(closed.ledger).toMatchObject({ withdrawn: earned.toString(), refunded: refunded.toString() })
    await waitFor('ledger', () => stack.service(serviceId)?.ledger.refunded === refunded.toString())
    expect(stack.service(serviceId)!.ledger).toMatchObject({ paid: (D + T).toString(), withdrawn: earned.toString(), refunded: refunded.toString() })
    expect(stack.service(serviceId)!.ledger.cloudCostUsd).toMatch(/^0\.0*[1-9]\d*$/) // the capacity's cost, accrued while it ran
  })

  test('behavior: a tier change scales to the new tier’s replicas; customer termination refunds at once', async () => {
    const { chain } = stack
    const blueprintId = await stack.registerDemo({ name: 'tiers' })
    const { serviceId } = await stack.chain.requestService({ blueprintId, tier: 0, deposit: 3600n * RATE, ttlSeconds: 86_400n })
    const dep = `bp-${chain.chainId}-${serviceId}`
    await waitFor('active', () => stack.service(serviceId)?.state === 'active')
    await chain.customer.changeTier(serviceId, 1)
    await waitFor('two replicas', () => stack.service(serviceId)?.replicas === 2 && processesOf(dep, stack.operatorId).length === 2)
    expect(stack.service(serviceId)!.tier).toBe('standard')
    const before = await chain.customer.balanceOf()
    await chain.customer.terminate(serviceId)
    const closed = await waitFor('closed', () => stack.service(serviceId)?.state === 'closed' && stack.service(serviceId))
    expect(closed.reason).toBe('CUSTOMER_TERMINATED')
    expect(processesOf(dep, stack.operatorId)).toHaveLength(0)
    const [r] = await stack.refunds(serviceId)
    expect(r!.reason).toBe('CUSTOMER_TERMINATED')
    expect(await chain.customer.balanceOf()).toBe(before + r!.amount)
  })

  test('behavior: an unhealthy replica is restarted by the loop', async () => {
    const { chain } = stack
    const blueprintId = await stack.registerDemo({ name: 'heal' })
    const { serviceId } = await chain.requestService({ blueprintId, deposit: 3600n * RATE })
    const dep = `bp-${chain.chainId}-${serviceId}`
    await waitFor('active', () => stack.service(serviceId)?.state === 'active')
    const [pid] = processesOf(dep, stack.operatorId)
    process.kill(pid!, 'SIGKILL')
    const healed = await waitFor('restarted', () => {
      const s = stack.service(serviceId)
      const pids = processesOf(dep, stack.operatorId)
      return s && s.health.restarts > 0 && s.health.healthy && s.endpoints.length > 0 && pids.length === 1 && pids[0] !== pid && s
    }, 30_000)
    expect((await fetch(healed.endpoints[0]!)).status).toBe(200)
    expect(healed.state).toBe('active')
  })

  test('behavior: the orphan sweep destroys what no live service owns', async () => {
    const local = d.daemon.targets.byName('local')!.provisioner
    const orphan = await local.provision({
      deploymentId: 'bp-31337-999999',
      serviceId: '999999',
      blueprintId: '1',
      source: { kind: 'native', url: stack.artifacts.urlOf('demo-service'), sha256: stack.artifacts.sha256('demo-service') },
      spec: { vcpu: 0.25, memoryGiB: 0.125, storageGiB: 0, gpu: { count: 0 }, replicas: 1, minReplicas: 1, maxReplicas: 1, regions: [], spotAllowed: false, highAvailability: false, ports: [8080], tier: 'basic' },
    })
    expect(orphan.replicasReady).toBe(1)
    const { createOrphanSweep } = await import('../../daemon/sweep.js')
    const { createTestCommon } = await import('../../core/common.js')
    const sweep = createOrphanSweep(createTestCommon().common, { store: d.daemon.store, targets: d.daemon.targets, intervalMs: 60_000, deploymentPrefix: 'bp-31337-' })
    // another chain's deployment of the same operator id is not this daemon's to sweep
    const foreign = await local.provision({ deploymentId: 'bp-1-5', serviceId: '5', blueprintId: '1', source: { kind: 'native', url: stack.artifacts.urlOf('demo-service'), sha256: stack.artifacts.sha256('demo-service') }, spec: { vcpu: 0.25, memoryGiB: 0.125, storageGiB: 0, gpu: { count: 0 }, replicas: 1, minReplicas: 1, maxReplicas: 1, regions: [], spotAllowed: false, highAvailability: false, ports: [8080], tier: 'basic' } })
    expect(foreign.replicasReady).toBe(1)
    const destroyed = await sweep.run()
    expect(destroyed).toContain('bp-31337-999999')
    expect(processesOf('bp-31337-999999', stack.operatorId)).toEqual([])
    expect(destroyed).not.toContain('bp-1-5')
    expect(processesOf('bp-1-5', stack.operatorId)).toHaveLength(1)
    await local.destroy('bp-1-5')
    // live services are untouched
    const live = Object.values(d.daemon.store.read().services).filter((s) => s.state === 'active')
    for (const s of live) expect(destroyed).not.toContain(s.deploymentId)
  })

  test('behavior: a tier runs only as many replicas as its rate pays for at the operator margin', async () => {
    const { chain } = stack
    // the stack's local target costs 0.01 USD/h per replica (10_000 token units at 1 USD per token); premium's rate
    // of 0.025 USD/h pays for two of the three replicas premium asks
    const blueprintId = await stack.registerDemo({ name: 'thin', prices: [3_600_000n, 7_200_000n, 25_000n] })
    const { serviceId } = await chain.requestService({ blueprintId, deposit: 3600n * RATE })
    await waitFor('active', () => stack.service(serviceId)?.state === 'active')
    await chain.customer.changeTier(serviceId, 2)
    await waitFor('tier applied', () => stack.service(serviceId)?.tier === 'premium')
    expect(stack.service(serviceId)!.replicas).toBe(2)
    // a replica the loop is restarting (a health probe that timed out on a loaded machine) is briefly missing
    await waitFor('two processes', () => processesOf(`bp-${chain.chainId}-${serviceId}`, stack.operatorId).length === 2)
    await chain.customer.terminate(serviceId)
    await waitFor('closed', () => stack.service(serviceId)?.state === 'closed')
  })

  test('behavior: a bigger tier runs only as many replicas as the target has room for', async () => {
    const { chain } = stack
    const blueprintId = await stack.registerDemo({ name: 'big', vcpuMilli: 1500 })
    const { serviceId } = await chain.requestService({ blueprintId, deposit: 3600n * 4n * RATE })
    await waitFor('active', () => stack.service(serviceId)?.state === 'active')
    const others = Object.values(d.daemon.store.read().services)
      .filter((s) => s.serviceId !== serviceId.toString() && ['active', 'scaled-to-zero', 'provisioning', 'terminating'].includes(s.state))
      .reduce((v, s) => v + s.spec!.vcpu * Math.max(s.replicas, s.spec!.replicas), 0)
    const fit = Math.floor((4 - others) / 1.5) // the stack's local target offers 4 vCPU
    expect(fit).toBeLessThan(3)
    await chain.customer.changeTier(serviceId, 2) // premium wants 3
    await waitFor('tier applied', () => stack.service(serviceId)?.tier === 'premium')
    expect(stack.service(serviceId)!.replicas).toBe(fit)
    await waitFor(`${fit} processes`, () => processesOf(`bp-${chain.chainId}-${serviceId}`, stack.operatorId).length === fit)
    await chain.customer.terminate(serviceId)
    await waitFor('closed', () => stack.service(serviceId)?.state === 'closed')
  })
})
