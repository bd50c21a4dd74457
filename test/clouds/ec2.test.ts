/**
 * The EC2 target beyond the contract: failover classification, rate limits, crash safety by ClientToken, scale to
 * zero by StopInstances, spot interruption, the image rule, the live spot price, and a clean destroy.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { isRetryable } from '../../core/errors.js'
import { confirmEc2SpotPrice } from '../../provisioners/aws-ec2/index.js'
import { ProvisionError, failoverOf } from '../../provisioners/errors.js'
import { readDemoInfo } from '../helpers/demo-service.js'
import { startEc2Lab, type Ec2Lab } from './ec2-lab.js'

let lab: Ec2Lab
beforeAll(async () => {
  lab = await startEc2Lab({ describeLagMs: 1_500 })
})
afterAll(async () => {
  await lab?.stop()
})

const tag = Math.random().toString(36).slice(2, 7)
const liveOf = (id: string) => lab.fake.live().filter((i) => i.tags['bpo-deployment'] === id)

async function rejection(p: Promise<unknown>): Promise<ProvisionError> {
  try {
    await p
  } catch (err) {
    return err as ProvisionError
  }
  throw new Error('expected a rejection')
}

describe('aws-ec2', () => {
  test('error: RunInstances failures carry the failover class placement uses', async () => {
    const prov = lab.provisioner()
    const expectFailover = async (code: string, ours: string, failover: unknown) => {
      const id = `ec2-${tag}-fo-${code.toLowerCase().slice(0, 12)}`
      lab.fake.fail('RunInstances', { code })
      const err = await rejection(prov.provision(lab.request(id)))
      expect({ code: err.code, failover: failoverOf(err), retryable: isRetryable(err) }).toEqual({ code: ours, failover, retryable: false })
      expect(err.meta.providerCode).toBe(code)
      // credentials never reach an error
      expect(`${err.message} ${JSON.stringify(err.meta)}`).not.toContain('fake-secret-access-key')
      expect(liveOf(id)).toEqual([])
      await prov.destroy(id)
      expect([...lab.fake.securityGroups.values()].filter((g) => g.tags['bpo-deployment'] === id)).toEqual([])
    }
    await expectFailover('InsufficientInstanceCapacity', 'CLOUD_CAPACITY', { kind: 'capacity', scope: 'offer' })
    await expectFailover('VcpuLimitExceeded', 'CLOUD_QUOTA', { kind: 'quota', scope: 'region' })
    await expectFailover('UnauthorizedOperation', 'CLOUD_AUTH', { kind: 'auth', scope: 'provider' })
    await expectFailover('OptInRequired', 'CLOUD_REGION_UNAVAILABLE', { kind: 'region-unavailable', scope: 'region' })
    await expectFailover('SpotMaxPriceTooLow', 'CLOUD_PRICE_CHANGED', { kind: 'price-changed', scope: 'offer' })
  })

  test('error: any other EC2 error answer is CLOUD_API_ERROR, not retried, with nothing left behind', async () => {
    const prov = lab.provisioner()
    const id = `ec2-${tag}-apierr`
    lab.fake.fail('RunInstances', { code: 'InvalidParameterValue' })
    const runs = lab.fake.calls.filter((c) => c.action === 'RunInstances').length
    const err = await rejection(prov.provision(lab.request(id)))
    expect({ code: err.code, retryable: isRetryable(err), providerCode: err.meta.providerCode }).toEqual({ code: 'CLOUD_API_ERROR', retryable: false, providerCode: 'InvalidParameterValue' })
    expect(lab.fake.calls.filter((c) => c.action === 'RunInstances').length - runs).toBe(1)
    expect(liveOf(id)).toEqual([])
    await prov.destroy(id)
  })

  test('error: no Debian 12 AMI of the Debian account in the region → CLOUD_IMAGE_NOT_FOUND (an image of another owner is never used)', async () => {
    const prov = lab.provisioner()
    const id = `ec2-${tag}-noimage`
    // only the impostor's image is left (owner 999999999999, newest of all)
    const saved = lab.fake.images.splice(0, lab.fake.images.length, ...lab.fake.images.filter((im) => im.owner !== '136693071363'))
    try {
      const err = await rejection(prov.provision(lab.request(id)))
      expect({ code: err.code, retryable: isRetryable(err) }).toEqual({ code: 'CLOUD_IMAGE_NOT_FOUND', retryable: false })
      expect(liveOf(id)).toEqual([])
    } finally {
      lab.fake.images.splice(0, lab.fake.images.length, ...saved)
    }
    await prov.destroy(id)
  })

  test('behavior: RequestLimitExceeded is retried with backoff and the call succeeds', async () => {
    const prov = lab.provisioner()
    const id = `ec2-${tag}-throttle`
    lab.fake.fail('DescribeInstances', { code: 'RequestLimitExceeded', times: 2 })
    const before = lab.fake.calls.filter((c) => c.action === 'DescribeInstances').length
    const st = await prov.status(id)
    expect(st.exists).toBe(false)
    expect(lab.fake.calls.filter((c) => c.action === 'DescribeInstances').length - before).toBeGreaterThanOrEqual(3)
  })

  test('behavior: a daemon that lost everything between create and record adopts the VM (ClientToken), one VM only', async () => {
    const first = lab.provisioner()
    const id = `ec2-${tag}-crash`
    const ac = new AbortController()
    const pending = first.provision(lab.request(id), { signal: ac.signal })
    // wait for RunInstances, then "kill" the daemon: abort and close, and start again without its data dir
    while (!lab.fake.calls.some((c) => c.action === 'RunInstances') || !liveOf(id).length) await new Promise((r) => setTimeout(r, 20))
    ac.abort(new Error('SIGKILL'))
    await pending.catch(() => undefined)
    await first.close()
    const again = lab.provisioner()
    // the instance is still invisible to DescribeInstances (eventual consistency): only the ClientToken prevents a second one
    const st = await again.provision(lab.request(id))
    expect(st.healthy).toBe(true)
    expect(st.replicasReady).toBe(1)
    expect(liveOf(id)).toHaveLength(1)
    expect([...lab.fake.instances.values()].filter((i) => i.tags['bpo-deployment'] === id)).toHaveLength(1)
    await again.destroy(id)
  })

  test('behavior: scale to zero stops the instance (EBS kept); scaling back starts the same instance with its data', async () => {
    const prov = lab.provisioner()
    const id = `ec2-${tag}-zero`
    const st = await prov.provision(lab.request(id))
    const [inst] = liveOf(id)
    const startsBefore = (await readDemoInfo(st.endpoints[0]!)).starts
    await prov.scale(id, 0)
    expect(liveOf(id).map((i) => i.state)).toEqual(['stopped'])
    const back = await prov.scale(id, 1)
    expect(liveOf(id).map((i) => [i.id, i.state])).toEqual([[inst!.id, 'running']])
    const info = await readDemoInfo(back.endpoints[0]!)
    expect(info.starts).toBe(startsBefore + 1)
    expect(info.replica).toBe(0)
    await prov.destroy(id)
  })

  test('behavior: images follow the Debian 12 rule (newest of account 136693071363, never another owner)', async () => {
    const prov = lab.provisioner()
    const id = `ec2-${tag}-image`
    await prov.provision(lab.request(id))
    expect(liveOf(id).map((i) => i.imageId)).toEqual(['ami-0a1b2c3d4e5f60718'])
    await prov.destroy(id)
  })

  test('behavior: a spot VM is bought as spot; an interruption shows in status and provision replaces it', async () => {
    const prov = lab.provisioner()
    const id = `ec2-${tag}-spot`
    await prov.provision(lab.request(id, { spot: true }))
    const [inst] = liveOf(id)
    expect(inst!.spot).toBe(true)
    await lab.fake.interrupt(inst!.id)
    const st = await prov.status(id)
    expect(st.healthy).toBe(false)
    expect(st.replicasReady).toBe(0)
    expect(st.detail).toMatch(/spot/)
    const replaced = await prov.provision(lab.request(id, { spot: true }))
    expect(replaced.healthy).toBe(true)
    expect(liveOf(id).map((i) => i.id)).not.toContain(inst!.id)
    expect(liveOf(id)).toHaveLength(1)
    expect(liveOf(id)[0]!.tags['bpo-generation']).toBe('1')
    await prov.destroy(id)
  })

  test('behavior: destroy leaves no instance, volume or security group', async () => {
    const prov = lab.provisioner()
    const id = `ec2-${tag}-clean`
    await prov.provision(lab.request(id, { replicas: 2 }))
    expect(liveOf(id)).toHaveLength(2)
    expect(lab.fake.volumes().filter((v) => v.tags['bpo-deployment'] === id)).toHaveLength(2)
    const sg = [...lab.fake.securityGroups.values()].filter((g) => g.tags['bpo-deployment'] === id)
    expect(sg).toHaveLength(1)
    // only the service port for everyone, SSH only from the daemon's CIDR
    expect(sg[0]!.rules.map((r) => `${r.from}-${r.to} ${r.cidr}`).sort()).toEqual(['22-22 10.0.0.0/8', '8080-8080 0.0.0.0/0'])
    await prov.destroy(id)
    expect(liveOf(id)).toEqual([])
    expect(lab.fake.volumes().filter((v) => v.tags['bpo-deployment'] === id)).toEqual([])
    expect([...lab.fake.securityGroups.values()].filter((g) => g.tags['bpo-deployment'] === id)).toEqual([])
    expect((await prov.listOwned()).filter((r) => r.deploymentId === id)).toEqual([])
  })

  test('args: a request without an offer is refused before anything is created', async () => {
    const prov = lab.provisioner()
    const { offer: _o, ...req } = lab.request(`ec2-${tag}-nooffer`)
    const err = await rejection(prov.provision(req))
    expect(err.code).toBe('OFFER_MISSING')
    const wrong = await rejection(prov.provision(lab.request(`ec2-${tag}-region`, { region: 'ap-south-1' })))
    expect(wrong.code).toBe('OFFER_REFUSED')
  })

  test('default: confirmEc2SpotPrice answers the lowest current zone price', async () => {
    lab.fake.spotPrices.set('t3.micro', [
      ['us-east-1a', '0.0041'],
      ['us-east-1b', '0.0035'],
      ['us-east-1c', '0.00392'],
    ])
    const prov = lab.provisioner()
    const price = await confirmEc2SpotPrice({ client: prov.clientFor('us-east-1'), instanceType: 't3.micro', signal: AbortSignal.timeout(10_000) })
    expect(price).toBe('0.0035')
    const none = await rejection(confirmEc2SpotPrice({ client: prov.clientFor('us-east-1'), instanceType: 'p5.48xlarge', signal: AbortSignal.timeout(10_000) }))
    expect(failoverOf(none)).toEqual({ kind: 'capacity', scope: 'offer' })
  })
})
