/**
 * Buying from a cloud, end to end: a real anvil chain, the daemon with the local target AND the AWS EC2 target
 * (the real @aws-sdk/client-ec2 pointed at the fake EC2 of test/fakes/, whose VMs are real sshd hosts in network
 * namespaces booted from the user data), and a price catalog in which EC2 is cheaper than the local machine.
 * ServiceInitiated → placement picks EC2 → RunInstances → SSH → the workload answers HTTP → expiry → StopInstances →
 * top-up → StartInstances (data kept) → TTL → destroy → the fake holds no VM, volume or security group. Then
 * failover: the cheapest offer answers InsufficientInstanceCapacity → the next candidate serves; every offer failing
 * → NO_CAPACITY refunded with the attempts.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { usd } from '../../core/money.js'
import type { FakeEc2 } from '../fakes/ec2-api.js'
import { awsOffer as offer, canNetns, startCloudStack, type CloudStack } from '../helpers/cloudStack.js'
import { startInProcess, waitFor, type Stack } from '../helpers/stack.js'

const RATE = 1000n

describe.skipIf(!canNetns)('e2e: buying from a cloud (fake EC2 booting real machines)', () => {
  let fake: FakeEc2
  let stack: Stack
  let cloud: CloudStack
  let d: Awaited<ReturnType<typeof startInProcess>>
  const liveOf = (dep: string) => fake.live().filter((i) => i.tags['bpo-deployment'] === dep)

  beforeAll(async () => {
    cloud = await startCloudStack({
      offers: [{ ...offer('t3.micro', 2, 1, '0.0104'), spotHourlyUsd: usd('0.0040') }, offer('t3.small', 2, 2, '0.0208'), offer('m5.large', 2, 8, '0.096')],
      placement: { max_attempts: 2, cooldown_ms: 15_000, confirm_price_older_than_ms: 3_600_000 },
    })
    ;({ stack, fake } = cloud)
    d = await startInProcess(stack)
  }, 120_000)
  afterAll(async () => {
    await d?.stop()
    await cloud?.stop()
  })

  test('default: placement buys EC2 → active over SSH → zero (stopped) → top-up → back, data kept → TTL → nothing left', { timeout: 900_000 }, async () => {
    const { chain } = stack
    const blueprintId = await stack.registerDemo()
    await chain.customer.mint(10_000_000n)
    const D = 90n * RATE
    const t0 = Date.now()
    const { serviceId } = await chain.customer.requestService({ blueprintId, operator: chain.operatorAddress, tier: 0, ttlSeconds: 900n, deposit: D })
    const dep = `bp-${chain.chainId}-${serviceId}`

    const active = await waitFor('active on EC2', () => stack.service(serviceId)?.state === 'active' && stack.service(serviceId), 300_000, 200)
    console.log(`ServiceInitiated → active on the fake EC2: ${((Date.now() - t0) / 1000).toFixed(1)} s`)
    expect(active.quote).toMatchObject({ provider: 'aws', target: 'aws', region: 'us-east-1', instanceType: 't3.micro' })
    // the decision, kept with the service: EC2's cheapest offer, then the others and the dearer local machine
    expect(active.decision!.winner).toMatchObject({ target: 'aws', instanceType: 't3.micro' })
    expect(active.decision!.next.map((c) => `${c.target}/${c.instanceType}`)).toEqual(['aws/t3.small', 'local/local', 'aws/m5.large'])
    expect(liveOf(dep)).toHaveLength(1)
    const vm = liveOf(dep)[0]!
    expect(vm.instanceType).toBe('t3.micro')
    const ep = active.endpoints[0]!
    expect(ep).toBe(`http://${vm.ip}:8080`)
    const first = (await (await fetch(`${ep}/`)).json()) as { deployment: string; starts: number }
    expect(first.deployment).toBe(dep)
    // CPU counters of the VM's replica reach the daemon through the host agent (what autoscaling reads)
    const st = await d.daemon.targets.byName('aws')!.provisioner.status(dep)
    expect(st.usage?.replicas.map((r) => r.index)).toEqual([0])

    // payment expires → the VM is stopped (EBS kept), the bill for compute stops
    await stack.travel(200n)
    await waitFor('scaled-to-zero', () => stack.service(serviceId)?.state === 'scaled-to-zero', 120_000, 200)
    await waitFor('VM stopped', () => liveOf(dep).every((i) => i.state === 'stopped'), 60_000, 200)

    // top-up → started again, the data disk kept
    await chain.customer.topUp(serviceId, 1_000n * RATE)
    const back = await waitFor('active again', () => {
      const s = stack.service(serviceId)
      return s?.state === 'active' && s.history.some((h) => h.cause === 'top-up') && s
    }, 300_000, 200)
    const again = (await (await fetch(`${back.endpoints[0]!}/`)).json()) as { starts: number }
    expect(again.starts).toBe(first.starts + 1)

    // TTL → destroyed: no VM, volume or security group left; cloud cost recorded
    await stack.travel(1_000n)
    const closed = await waitFor('closed', () => stack.service(serviceId)?.state === 'closed' && stack.service(serviceId), 120_000, 200)
    expect(closed.reason).toBe('TTL_REACHED')
    expect(Number(closed.ledger.cloudCostUsd)).toBeGreaterThan(0)
    expect(Number(closed.ledger.replicaHours)).toBeGreaterThan(0)
    expect(liveOf(dep)).toEqual([])
    expect(fake.volumes().filter((v) => v.tags['bpo-deployment'] === dep)).toEqual([])
    expect([...fake.securityGroups.values()].filter((g) => g.tags['bpo-deployment'] === dep)).toEqual([])
    expect(await d.daemon.targets.byName('aws')!.provisioner.listOwned()).toEqual([])
  })

  test('behavior: InsufficientInstanceCapacity on the cheapest offer → the next candidate serves; all failing → NO_CAPACITY', { timeout: 900_000 }, async () => {
    const { chain } = stack
    const blueprintId = await stack.registerDemo({ name: 'failover' })
    await chain.customer.mint(10_000_000n)
    fake.fail('RunInstances', { code: 'InsufficientInstanceCapacity', times: 1, match: (q) => q.get('InstanceType') === 't3.micro' })
    const { serviceId } = await chain.customer.requestService({ blueprintId, operator: chain.operatorAddress, tier: 0, ttlSeconds: 300n, deposit: 60n * RATE, preferences: { providers: ['aws'] } })
    const s = await waitFor('active on the next offer', () => stack.service(serviceId)?.state === 'active' && stack.service(serviceId), 300_000, 200)
    expect(s.quote).toMatchObject({ target: 'aws', instanceType: 't3.small' })
    expect(s.decision!.attempts).toEqual([expect.objectContaining({ instanceType: 't3.micro', kind: 'capacity' })])
    expect(s.history.map((h) => h.to)).toEqual(['requested', 'provisioning', 'requested', 'provisioning', 'active'])
    await chain.customer.terminate(serviceId)
    await waitFor('closed', () => stack.service(serviceId)?.state === 'closed', 120_000, 200)

    // every aws offer fails (t3.micro is still in its cooldown; t3.small and m5.large fail) → NO_CAPACITY, attempts listed
    fake.fail('RunInstances', { code: 'InsufficientInstanceCapacity', times: 2 }) // max_attempts: two offers tried, both refused
    const { serviceId: id2 } = await chain.customer.requestService({ blueprintId, operator: chain.operatorAddress, tier: 0, ttlSeconds: 300n, deposit: 60n * RATE, preferences: { providers: ['aws'] } })
    const r = await waitFor('refunded', () => stack.service(id2)?.state === 'refunded' && stack.service(id2), 300_000, 200)
    expect(r.reason).toBe('NO_CAPACITY')
    expect(r.problems!.filter((p) => /^aws us-east-1\/\S+ at \S+ USD\/h: capacity: /.test(p))).toHaveLength(2)
    expect(await stack.refunds(id2)).toEqual([{ amount: 60n * RATE, reason: 'NO_CAPACITY' }])
    expect(liveOf(`bp-${chain.chainId}-${id2}`)).toEqual([])
  })

  test('behavior: a spot request buys at the live spot price when the catalog price is older than its max age', { timeout: 900_000 }, async () => {
    const { chain } = stack
    const blueprintId = await stack.registerDemo({ name: 'spot' })
    await chain.customer.mint(10_000_000n)
    fake.spotPrices.set('t3.micro', [['us-east-1a', '0.0051'], ['us-east-1b', '0.0047']])
    // the offers the failover test blocked come back after their cooldown
    await waitFor('blocks expired', () => d.daemon.manager.context.placement.blocks().length === 0, 60_000, 200)
    // the cached catalog is two hours old now (confirm_price_older_than_ms is one hour)
    const cached = d.daemon.targets.byName('aws')!.offersFor({} as never)
    for (const o of cached) (o as { fetchedAt: number }).fetchedAt = Date.now() - 2 * 3_600_000
    const { serviceId } = await chain.customer.requestService({ blueprintId, operator: chain.operatorAddress, tier: 0, ttlSeconds: 300n, deposit: 60n * RATE, preferences: { providers: ['aws'], spotAllowed: true } })
    const s = await waitFor('active on spot', () => stack.service(serviceId)?.state === 'active' && stack.service(serviceId), 300_000, 200)
    // the catalog said 0.0040; the account's live price (the lowest zone) is what was bought and what the ledger uses
    expect(s.quote).toMatchObject({ instanceType: 't3.micro', spot: true, priceConfirmed: true, hourlyUsd: '0.0047' })
    expect(liveOf(`bp-${chain.chainId}-${serviceId}`).map((i) => i.spot)).toEqual([true])
    await chain.customer.terminate(serviceId)
    await waitFor('closed', () => stack.service(serviceId)?.state === 'closed', 120_000, 200)
    expect(liveOf(`bp-${chain.chainId}-${serviceId}`)).toEqual([])
  })
})
