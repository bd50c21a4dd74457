import { runProvisionerContract } from '../provisioner-contract/suite.js'
import { freePort } from '../helpers/sshd.js'
import { probeDemo } from '../helpers/demo-service.js'
import { join } from 'node:path'
import { startEc2Lab } from './ec2-lab.js'

runProvisionerContract('aws-ec2 (fake EC2, real sshd VMs)', async () => {
  const lab = await startEc2Lab()
  const dataDir = join(lab.dir, 'data-main')
  const provisioner = lab.provisioner({ dataDir })
  const otherOperator = lab.provisioner({ operatorId: 'op-other' })
  return {
    provisioner,
    otherOperator,
    reopen: async () => lab.provisioner({ dataDir }),
    makeRequest: (id, o) => lab.request(id, { replicas: o?.replicas ?? 1 }),
    probe: (endpoint) => probeDemo(endpoint),
    supportsDataKeep: true,
    reportsUsage: true,
    unreachable: async () => lab.provisioner({ endpoint: `http://127.0.0.1:${await freePort()}` }),
    async teardown() {
      await lab.stop()
    },
  }
})
