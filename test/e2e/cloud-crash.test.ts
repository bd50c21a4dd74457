/**
 * Crash safety on a cloud: the daemon runs as a child process (`blueprint-operator run`) and is SIGKILLed right after
 * EC2 created the VM (RunInstances answered) and before anything else was recorded. The restarted daemon resumes
 * the recorded provisioning intent and adopts the VM (same ClientToken, ownership tags): one VM, one activation.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { awsOffer, canNetns, startCloudStack, type CloudStack } from '../helpers/cloudStack.js'
import { startChild, waitFor } from '../helpers/stack.js'

describe.skipIf(!canNetns)('e2e: SIGKILL between a VM created and recorded', () => {
  let cloud: CloudStack
  let child: ReturnType<typeof startChild> | undefined
  beforeAll(async () => {
    cloud = await startCloudStack({ offers: [awsOffer('t3.micro', 2, 1, '0.0104')] })
  }, 120_000)
  afterAll(async () => {
    child?.child.kill('SIGKILL')
    await cloud?.stop()
  })

  test('behavior: the restarted daemon adopts the VM instead of creating a second one', { timeout: 600_000 }, async () => {
    const { stack, fake } = cloud
    const { chain } = stack
    const blueprintId = await stack.registerDemo()
    await chain.customer.mint(10_000_000n)
    process.env.BPO_FAULT = 'cloud.vm-created'
    child = startChild(stack)
    delete process.env.BPO_FAULT
    const { serviceId } = await chain.customer.requestService({ blueprintId, operator: chain.operatorAddress, tier: 0, ttlSeconds: 600n, deposit: 60_000n, preferences: { providers: ['aws'] } })
    const dep = `bp-${chain.chainId}-${serviceId}`
    const code = await child.exited
    expect(child.output()).toContain('BPO_FAULT: killed at cloud.vm-created#1')
    expect(code).toBeNull() // killed by its signal
    expect(cloud.liveOf(dep)).toHaveLength(1)
    expect(stack.service(serviceId)?.state).toBe('provisioning')

    child = startChild(stack)
    const active = await waitFor('active after the restart', () => stack.service(serviceId)?.state === 'active' && stack.service(serviceId), 300_000, 200)
    const vms = cloud.liveOf(dep)
    expect(vms).toHaveLength(1)
    expect(fake.calls.filter((c) => c.action === 'RunInstances').length).toBeGreaterThanOrEqual(1)
    expect(active.endpoints).toEqual([`http://${vms[0]!.ip}:8080`])
    expect(await stack.events(serviceId, 'ServiceActivated')).toHaveLength(1)
    await chain.customer.terminate(serviceId)
    await waitFor('closed', () => stack.service(serviceId)?.state === 'closed', 120_000, 200)
    await waitFor('VM gone', () => cloud.liveOf(dep).length === 0, 60_000, 200)
    child.child.kill('SIGTERM')
    await child.exited
    child = undefined
  })
})
