/**
 * The SSH provisioner accepts hosts that appear and disappear at run time (a cloud VM is a host it is handed).
 */
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { probeDemo } from '../helpers/demo-service.js'
import { destroyAll, startSshLab, type SshLab } from './harness.js'

let lab: SshLab
beforeAll(async () => {
  lab = await startSshLab({ hosts: 1 })
})
afterAll(async () => {
  await lab?.stop()
})

describe('ssh: hosts at run time', () => {
  test('behavior: addHost makes a host usable, removeHost forgets it and its placements; adding it back adopts', async () => {
    const prov = lab.provisioner({ hosts: [] })
    const host = lab.hosts[0]!
    const id = `rt-${Math.random().toString(36).slice(2, 7)}`
    await expect(prov.provision(lab.request(id))).rejects.toMatchObject({ code: 'NO_FEASIBLE_OFFER' })
    prov.addHost(host)
    expect(prov.hostNames()).toEqual([host.name])
    const st = await prov.provision(lab.request(id))
    expect(st.healthy).toBe(true)
    await prov.removeHost(host.name)
    expect(prov.hostNames()).toEqual([])
    expect(prov.placements()).toEqual([])
    // the workload still runs on the host; the provisioner no longer knows where
    expect(await probeDemo(st.endpoints[0]!)).toBe(true)
    expect((await prov.status(id)).exists).toBe(false)
    prov.addHost(host)
    const back = await prov.provision(lab.request(id, { placement: host.name }))
    expect(back.endpoints).toEqual(st.endpoints)
    await destroyAll(prov)
    expect(await probeDemo(st.endpoints[0]!)).toBe(false)
  })

  test('error: a recorded deployment on a host no longer configured is SSH_HOST_UNKNOWN (not retried), until the host is back', async () => {
    const host = lab.hosts[0]!
    const stateDir = join(lab.dir, `state-unknown-${Math.random().toString(36).slice(2, 7)}`)
    const id = `gone-${Math.random().toString(36).slice(2, 7)}`
    const first = lab.provisioner({ stateDir })
    const st = await first.provision(lab.request(id))
    expect(st.healthy).toBe(true)
    await first.close()
    // the operator removed the host from the configuration; the ledger in the state dir still places the deployment there
    const without = lab.provisioner({ stateDir, hosts: [] })
    await expect(without.status(id)).rejects.toMatchObject({ code: 'SSH_HOST_UNKNOWN', retryable: false, meta: { host: host.name } })
    await expect(without.destroy(id)).rejects.toMatchObject({ code: 'SSH_HOST_UNKNOWN' })
    await without.close()
    // configured again, the same ledger finds it and destroys it
    const back = lab.provisioner({ stateDir })
    expect((await back.status(id)).healthy).toBe(true)
    await back.destroy(id)
    expect(await probeDemo(st.endpoints[0]!)).toBe(false)
  })

  test('error: a source kind the operator does not accept is SOURCE_KIND_REFUSED (MALFORMED_REQUEST), nothing placed', async () => {
    const prov = lab.provisioner()
    const req = lab.request(`kind-${Math.random().toString(36).slice(2, 7)}`)
    expect(prov.sourceKinds).not.toContain('testing')
    const testing = { kind: 'testing' as const, url: lab.artifacts.urlOf('demo-service'), sha256: lab.artifacts.sha256('demo-service') }
    await expect(prov.provision({ ...req, source: testing })).rejects.toMatchObject({ code: 'SOURCE_KIND_REFUSED', reason: 'MALFORMED_REQUEST' })
    expect(prov.placements()).toEqual([])
  })

  test('error: addHost refuses an invalid host and replaces one of the same name', async () => {
    const prov = lab.provisioner({ hosts: [] })
    const host = lab.hosts[0]!
    expect(() => prov.addHost({ ...host, hostKey: 'not a key' })).toThrow(/hostKey/)
    expect(() => prov.addHost({ ...host, ports: { from: 80, to: 80 } })).toThrow(/ports/)
    prov.addHost(host)
    prov.addHost({ ...host, hourlyUsd: '0.5' })
    expect(prov.capacity().map((c) => c.hourlyUsd)).toEqual(['0.5'])
  })
})
