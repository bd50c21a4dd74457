/**
 * The provisioner contract suite for the ThreeFold target. Real: node contracts created and cancelled on a TFChain
 * runtime (spec 61) under chopsticks by the protocol worker test/fakes/grid-worker-zos.cjs (grid_client's deployment
 * objects, signed with the twin's mnemonic; the twin checked at the worker's init), and each VM's workload — the
 * demo service, downloaded and sha256-verified by the runner's entrypoint — answering on the public IP TFChain
 * reserved for its contract. Faked: the RMB relay and the Zero-OS node (test/fakes/zos-node.cjs runs the zmachine's
 * entrypoint in namespaces instead of booting the flist), and the grid proxy. scale(0) loses the data on the grid
 * (supportsDataKeep false).
 */
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, test } from 'vitest'
import { createTestCommon } from '../../core/common.js'
import { TierNames } from '../../core/spec.js'
import { canBootGridVms, demoAnswers, startGridFarm, farmProvisioner } from '../../test/helpers/gridFarm.js'
import { runProvisionerContract } from '../../test/provisioner-contract/suite.js'
import type { DeploymentRequest } from '../types.js'

const { common } = createTestCommon()

if (!canBootGridVms) describe.skip('provisioner contract: threefold (grid VMs need root: network namespaces)', () => test('skipped', () => {}))
else
  runProvisionerContract('threefold', async () => {
    const farm = await startGridFarm()
    // boot time generous: a loaded 2-core machine starts the VM's workload slowly
    const make = (mnemonic: string, twinId: number, stateDir: string, substrateUrl = farm.dev.chain.wsUrl) =>
      farmProvisioner(common, farm, { stateDir, bootTimeoutMs: 120_000, as: { mnemonic, twinId }, substrateUrl })
    const myState = mkdtempSync(join(tmpdir(), 'tf-ct-'))
    const provisioner = make(farm.mnemonic, farm.twinId, myState)
    const otherOperator = make(farm.otherMnemonic, farm.otherTwinId, mkdtempSync(join(tmpdir(), 'tf-ct-')))
    const reopened: Array<ReturnType<typeof make>> = []
    return {
      provisioner,
      otherOperator,
      reopen: async () => {
        const p = make(farm.mnemonic, farm.twinId, myState)
        reopened.push(p)
        return p
      },
      makeRequest: (deploymentId, o = {}): DeploymentRequest => {
        const replicas = o.replicas ?? 1
        return {
          deploymentId,
          serviceId: '1',
          blueprintId: '1',
          source: { kind: 'native', url: farm.artifacts.urlOf('demo-service'), sha256: farm.artifacts.sha256('demo-service') },
          spec: { vcpu: 1, memoryGiB: 1, storageGiB: 1, gpu: { count: 0 }, replicas, minReplicas: replicas, maxReplicas: replicas, regions: [], spotAllowed: false, highAvailability: false, ports: [8080], tier: TierNames[0] },
        }
      },
      // a fresh connection per probe: scale(0) and back gives the public IP to a new VM
      probe: (endpoint) => demoAnswers(endpoint),
      supportsDataKeep: false,
      unreachable: async () => make(farm.mnemonic, farm.twinId, mkdtempSync(join(tmpdir(), 'tf-ct-')), 'ws://127.0.0.1:9'),
      async teardown() {
        await provisioner.close()
        await otherOperator.close()
        for (const p of reopened) await p.close()
        await farm.stop()
      },
    }
  })
