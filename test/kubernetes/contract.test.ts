import { createTestCommon } from '../../core/common.js'
import type { Provisioner } from '../../provisioners/types.js'
import { startFakeKubernetesApi } from '../fakes/kubernetes-api.js'
import { runProvisionerContract, type ContractHarness } from '../provisioner-contract/suite.js'
import { containerRequest, deadKubeconfig, provisionerOn } from './helpers.js'

for (const variant of ['StatefulSet + PVC', 'Deployment'] as const) {
  runProvisionerContract(`kubernetes (${variant}, fake API server)`, async (): Promise<ContractHarness> => {
    const { common, shutdown } = createTestCommon()
    const fake = await startFakeKubernetesApi()
    const opened: Provisioner[] = []
    const open = (operatorId: string) => {
      const p = provisionerOn(common, operatorId, { 'c1-eu-west': fake })
      opened.push(p)
      return p
    }
    const dead = await deadKubeconfig()
    return {
      provisioner: open('op-contract'),
      otherOperator: open('op-other'),
      reopen: async () => open('op-contract'),
      // standard tier (2..5) so the HPA paths run too; storage makes it a StatefulSet with a volume claim
      makeRequest: (id, o) =>
        containerRequest(id, { replicas: o?.replicas ?? 1, maxReplicas: 5, tier: 'standard', storageGiB: variant === 'Deployment' ? 0 : 1 }),
      // the data-keep check for Kubernetes: zero replicas with the namespace, workload and claims still there
      supportsDataKeep: variant !== 'Deployment',
      unreachable: async () => provisionerOn(common, 'op-contract', { dead: dead.path }, { requestTimeoutMs: 2_000 }),
      async teardown() {
        for (const p of opened) await p.close()
        await fake.close()
        dead.remove()
        await shutdown()
      },
    }
  })
}
