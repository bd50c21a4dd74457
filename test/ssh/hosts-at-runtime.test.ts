/**
 * The SSH provisioner accepts hosts that appear and disappear at run time (a cloud VM is a host it is handed).
 */
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
