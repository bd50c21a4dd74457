/**
 * The Hetzner target beyond the contract: failover classification, rate limits, crash safety by label lookup,
 * scale to zero by deleting the server and keeping its Volume, the live price, and a clean destroy.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { makeSecret } from '../../config/secrets.js'
import { isRetryable } from '../../core/errors.js'
import { ProvisionError, failoverOf } from '../../provisioners/errors.js'
import { confirmHetznerPrice } from '../../provisioners/hetzner/index.js'
import { readDemoInfo } from '../helpers/demo-service.js'
import { HETZNER_TOKEN, startHetznerLab, type HetznerLab } from './hetzner-lab.js'

let lab: HetznerLab
beforeAll(async () => {
  lab = await startHetznerLab()
})
afterAll(async () => {
  await lab?.stop()
})

const tag = Math.random().toString(36).slice(2, 7)
const serversOf = (id: string) => [...lab.fake.servers.values()].filter((s) => s.labels['bpo-deployment'] === id && s.status !== 'deleting')
const volumesOf = (id: string) => [...lab.fake.volumes.values()].filter((v) => v.labels['bpo-deployment'] === id)
const firewallsOf = (id: string) => [...lab.fake.firewalls.values()].filter((f) => f.labels['bpo-deployment'] === id)

async function rejection(p: Promise<unknown>): Promise<ProvisionError> {
  try {
    await p
  } catch (err) {
    return err as ProvisionError
  }
  throw new Error('expected a rejection')
}

describe('hetzner', () => {
  test('error: resource_unavailable and a refused token carry the failover class placement uses', async () => {
    const prov = lab.provisioner()
    const id = `hz-${tag}-cap`
    lab.fake.fail(/^POST \/v1\/servers$/, { status: 412, code: 'resource_unavailable' })
    const err = await rejection(prov.provision(lab.request(id)))
    expect({ code: err.code, failover: failoverOf(err), retryable: isRetryable(err) }).toEqual({ code: 'CLOUD_CAPACITY', failover: { kind: 'capacity', scope: 'offer' }, retryable: false })
    expect(serversOf(id)).toEqual([])
    await prov.destroy(id)
    expect(volumesOf(id)).toEqual([])
    expect(firewallsOf(id)).toEqual([])

    const bad = lab.provisioner({ token: 'wrong-token' })
    const auth = await rejection(bad.provision(lab.request(`hz-${tag}-auth`)))
    expect(failoverOf(auth)).toEqual({ kind: 'auth', scope: 'provider' })
    expect(`${auth.message} ${JSON.stringify(auth.meta)}`).not.toContain(HETZNER_TOKEN)
  })

  test('behavior: rate_limit_exceeded (429, Retry-After) is retried and the call succeeds', async () => {
    const prov = lab.provisioner()
    lab.fake.fail(/^GET \/v1\/servers$/, { status: 429, code: 'rate_limit_exceeded', times: 2, headers: { 'retry-after': '1' } })
    const t0 = Date.now()
    const st = await prov.status(`hz-${tag}-never`)
    expect(st.exists).toBe(false)
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1_500)
  })

  test('behavior: a daemon that lost everything between create and record adopts the server by its labels', async () => {
    const first = lab.provisioner()
    const id = `hz-${tag}-crash`
    const ac = new AbortController()
    const pending = first.provision(lab.request(id), { signal: ac.signal })
    while (!serversOf(id).length) await new Promise((r) => setTimeout(r, 20))
    ac.abort(new Error('SIGKILL'))
    await pending.catch(() => undefined)
    await first.close()
    const again = lab.provisioner()
    const st = await again.provision(lab.request(id))
    expect(st.healthy).toBe(true)
    expect(serversOf(id)).toHaveLength(1)
    expect(volumesOf(id)).toHaveLength(1)
    await again.destroy(id)
  })

  test('behavior: scale to zero deletes the server and keeps the volume; scaling back attaches it with the data', async () => {
    const prov = lab.provisioner()
    const id = `hz-${tag}-zero`
    const st = await prov.provision(lab.request(id))
    const [vol] = volumesOf(id)
    const startsBefore = (await readDemoInfo(st.endpoints[0]!)).starts
    const zero = await prov.scale(id, 0)
    expect(zero.exists).toBe(true)
    expect(serversOf(id)).toEqual([])
    expect(volumesOf(id).map((v) => [v.id, v.server])).toEqual([[vol!.id, null]])
    const back = await prov.scale(id, 1)
    expect(serversOf(id).map((s) => s.volumes)).toEqual([[vol!.id]])
    const info = await readDemoInfo(back.endpoints[0]!)
    expect(info.starts).toBe(startsBefore + 1)
    await prov.destroy(id)
  })

  test('behavior: destroy leaves no server, volume or firewall', async () => {
    const prov = lab.provisioner()
    const id = `hz-${tag}-clean`
    await prov.provision(lab.request(id, { replicas: 2 }))
    expect(serversOf(id)).toHaveLength(2)
    expect(volumesOf(id)).toHaveLength(2)
    expect(firewallsOf(id).map((f) => f.rules)).toEqual([
      [
        { direction: 'in', protocol: 'tcp', port: '8080', source_ips: ['0.0.0.0/0', '::/0'], description: 'service' },
        { direction: 'in', protocol: 'tcp', port: '22', source_ips: ['10.0.0.0/8'], description: 'blueprint-operator daemon' },
      ],
    ])
    await prov.destroy(id)
    expect(serversOf(id)).toEqual([])
    expect(volumesOf(id)).toEqual([])
    expect(firewallsOf(id)).toEqual([])
    expect((await prov.listOwned()).filter((r) => r.deploymentId === id)).toEqual([])
  })

  test('default: confirmHetznerPrice answers the live net price in USD', async () => {
    const price = await confirmHetznerPrice({ token: makeSecret('env:X', HETZNER_TOKEN), endpoint: lab.fake.url, serverType: 'cx22', location: 'fsn1', eurUsd: '1.08', signal: AbortSignal.timeout(10_000) })
    expect(price).toBe('0.00648')
    const none = await rejection(confirmHetznerPrice({ token: makeSecret('env:X', HETZNER_TOKEN), endpoint: lab.fake.url, serverType: 'cx22', location: 'sin', eurUsd: '1.08', signal: AbortSignal.timeout(10_000) }))
    expect(failoverOf(none)).toEqual({ kind: 'capacity', scope: 'offer' })
  })
})
