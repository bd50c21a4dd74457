/**
 * A grid VM's boot as the threefold target sees it, with node contracts real on TFChain (spec 61, chopsticks) and the
 * fake Zero-OS node of test/fakes/zos-node.cjs running each zmachine for real on its contract's public IP: the VM gets
 * the environment every target sets (HOST, DEPLOYMENT_ID, REPLICA_INDEX, DATA_DIR on its disk); a VM whose workload
 * never answers (the artifact fails its sha256 check inside the VM) fails the provision as UNHEALTHY after
 * `bootTimeoutMs`, its contract cancelled — and recorded as the daemon's own before the cancel; a VM whose workload
 * dies is replaced by restart.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { exited } from '../../test/helpers/stack.js'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { createTestCommon } from '../../core/common.js'
import { TierNames } from '../../core/spec.js'
import { canBootGridVms, demoHello, startGridFarm, farmProvisioner, type GridFarm } from '../../test/helpers/gridFarm.js'
import type { DeploymentRequest, Provisioner } from '../types.js'
import { loadOwnCancels } from './ownCancels.js'

const { common } = createTestCommon()
let farm: GridFarm
let prov: Provisioner
let stateDir: string

const request = (deploymentId: string, o: { sha256?: string; env?: Record<string, string> } = {}): DeploymentRequest => ({
  deploymentId,
  serviceId: '9',
  blueprintId: '4',
  source: { kind: 'native', url: farm.artifacts.urlOf('demo-service'), sha256: o.sha256 ?? farm.artifacts.sha256('demo-service') },
  spec: { vcpu: 1, memoryGiB: 1, storageGiB: 1, gpu: { count: 0 }, replicas: 1, minReplicas: 1, maxReplicas: 1, regions: [], spotAllowed: false, highAvailability: false, ports: [8080], tier: TierNames[0] },
  ...(o.env && { env: o.env }),
})

/** Pids of the processes whose environment says DEPLOYMENT_ID=`id` (a grid VM's workload, seen from this machine; not the fake node's unshare). */
function workloadPids(id: string): number[] {
  return readdirSync('/proc').filter((d) => /^\d+$/.test(d)).flatMap((d) => {
    try {
      return readFileSync(`/proc/${d}/environ`, 'latin1').split('\0').includes(`DEPLOYMENT_ID=${id}`) && !/\) Z /.test(readFileSync(`/proc/${d}/stat`, 'latin1')) && readFileSync(`/proc/${d}/comm`, 'latin1').trim() !== 'unshare' ? [Number(d)] : []
    } catch {
      return []
    }
  })
}

describe.skipIf(!canBootGridVms)('threefold: booting grid VMs (fake Zero-OS node, real contracts)', () => {
  beforeAll(async () => {
    farm = await startGridFarm()
    stateDir = mkdtempSync(join(tmpdir(), 'tf-boot-'))
    // a workload that cannot start is given up on after 20 s; one that can answers well within it
    prov = farmProvisioner(common, farm, { stateDir, bootTimeoutMs: 20_000 })
  }, 180_000)
  afterAll(async () => {
    await prov?.close()
    await farm?.stop()
    if (stateDir) rmSync(stateDir, { recursive: true, force: true })
  })

  test('default: the VM runs the artifact with the environment every target sets, on the public IP of its contract', async () => {
    const st = await prov.provision(request('bp-boot-1'))
    expect(st).toMatchObject({ healthy: true, replicasReady: 1 })
    const [ip] = [...(await farm.reservedIps()).keys()]
    expect(st.endpoints).toEqual([`http://${ip}:8080`])
    const hello = await demoHello(st.endpoints[0]!)
    expect(hello).toMatchObject({ service: '9', blueprint: '4', deployment: 'bp-boot-1', replica: 0, starts: 1 })
    await prov.destroy('bp-boot-1')
    expect([...(await farm.contractsOf(farm.twinId)).values()].filter((s) => s === 'created')).toEqual([])
  }, 120_000)

  test('error: a VM whose workload never answers fails the provision as UNHEALTHY; its contract is cancelled, recorded as the daemon\'s own first', async () => {
    const lastId = async () => Number((await farm.dev.api.query.smartContractModule!.contractID!()).toString())
    const before = await lastId()
    const err = await prov.provision(request('bp-boot-2', { sha256: 'c'.repeat(64) })).then(() => undefined, (e: unknown) => e)
    expect(err).toMatchObject({ code: 'UNHEALTHY', reason: 'UNHEALTHY', retryable: true })
    // one contract was created for the attempt; it is no longer live (TFChain drops a cancelled contract after its bill)
    expect(await lastId()).toBe(before + 1)
    const created = String(before + 1)
    expect((await farm.contractsOf(farm.twinId)).get(created) ?? 'gone').not.toBe('created')
    expect(loadOwnCancels(stateDir).has(created)).toBe(true)
    expect((await farm.reservedIps()).size).toBe(0)
    expect((await prov.status('bp-boot-2')).exists).toBe(false)
  }, 120_000)

  test('behavior: a VM whose workload died is unhealthy; restart replaces it on a new contract (the old one cancelled as the daemon\'s own)', async () => {
    const lastId = async () => Number((await farm.dev.api.query.smartContractModule!.contractID!()).toString())
    const st = await prov.provision(request('bp-boot-4'))
    expect(st.healthy).toBe(true)
    const first = String(await lastId())
    const pids = workloadPids('bp-boot-4')
    expect(pids).toHaveLength(1)
    process.kill(pids[0]!, 'SIGKILL')
    await exited(pids[0]!) // a signal takes effect when the process is next scheduled
    const sick = await prov.status('bp-boot-4')
    expect(sick).toMatchObject({ healthy: false, replicasReady: 0, endpoints: [] })
    expect(sick.detail).toContain('bp-boot-4-r0')
    const healed = await prov.restart('bp-boot-4')
    expect(healed).toMatchObject({ healthy: true, replicasReady: 1 })
    expect(await lastId()).toBe(Number(first) + 1)
    const live = [...(await farm.contractsOf(farm.twinId))].filter(([, s]) => s === 'created').map(([id]) => id)
    expect(live).toEqual([String(Number(first) + 1)])
    expect(loadOwnCancels(stateDir).has(first)).toBe(true)
    expect(await demoHello(healed.endpoints[0]!)).toMatchObject({ deployment: 'bp-boot-4', starts: 1 })
    await prov.destroy('bp-boot-4')
  }, 120_000)

  test('error: a request that sets an env key the target sets itself is refused before anything is created (ENV_REFUSED)', async () => {
    const before = (await farm.contractsOf(farm.twinId)).size
    await expect(prov.provision(request('bp-boot-3', { env: { HOST: '127.0.0.1' } }))).rejects.toMatchObject({ code: 'ENV_REFUSED', reason: 'MALFORMED_REQUEST' })
    expect((await farm.contractsOf(farm.twinId)).size).toBe(before)
  })
})
