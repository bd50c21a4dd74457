import { join } from 'node:path'
import { runProvisionerContract } from '../provisioner-contract/suite.js'
import { test } from 'vitest'
import { freePort, sshdMissing } from '../helpers/sshd.js'
import { probeDemo } from '../helpers/demo-service.js'
import { destroyAll, startSshLab } from './harness.js'

const noSshd = sshdMissing()
if (noSshd) test.skip(`real sshd suites: ${noSshd}`, () => undefined)
else runProvisionerContract('ssh', async () => {
  const lab = await startSshLab({ hosts: 2 })
  const stateDir = join(lab.dir, 'state-main')
  const provisioner = lab.provisioner({ stateDir })
  const otherOperator = lab.provisioner({ operatorId: 'op-other' })
  return {
    provisioner,
    otherOperator,
    reopen: async () => lab.provisioner({ stateDir }),
    makeRequest: (id, o) => lab.request(id, { replicas: o?.replicas ?? 1 }),
    probe: (endpoint) => probeDemo(endpoint),
    supportsDataKeep: true,
    reportsUsage: true,
    unreachable: async () => {
      const port = await freePort()
      return lab.provisioner({ hosts: [{ ...lab.hosts[0]!, port }], connectTimeoutMs: 5_000 })
    },
    async teardown() {
      await destroyAll(provisioner)
      await destroyAll(otherOperator)
      await lab.stop()
    },
  }
})
