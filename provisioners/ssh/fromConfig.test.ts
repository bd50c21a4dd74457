import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, test } from 'vitest'
import { makeSecret } from '../../config/secrets.js'
import { createTestCommon } from '../../core/common.js'
import { usd } from '../../core/money.js'
import { createSshProvisionerFromConfig, sshHostsFromConfig, type SshHostsConfig } from './fromConfig.js'

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ4AEpJx/ur/QOQNaawrnRVh3m9c2A2JefQOX1zZIs1O'
const hosts: SshHostsConfig = [
  {
    name: 'box-1',
    address: '10.0.0.5',
    port: 2222,
    user: 'deploy',
    privateKey: makeSecret('env:BOX_KEY', '-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----'),
    hostKey: KEY,
    vcpu: 8,
    memoryGiB: 16,
    storageGiB: 200,
    hourlyUsd: usd('0.085'),
    region: 'eu-central',
    remoteRoot: '/srv/bpo',
    portRange: [21000, 21099],
    labels: { rack: 'a' },
  },
]

describe('fromConfig', () => {
  test('default: config hosts become SshHost values with the key revealed', () => {
    expect(sshHostsFromConfig(hosts)).toEqual([
      {
        name: 'box-1',
        address: '10.0.0.5',
        port: 2222,
        user: 'deploy',
        privateKey: '-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----',
        hostKey: KEY,
        capacity: { vcpu: 8, memoryGiB: 16, storageGiB: 200 },
        hourlyUsd: '0.085',
        region: 'eu-central',
        labels: { rack: 'a' },
        remoteRoot: '/srv/bpo',
        ports: { from: 21000, to: 21099 },
      },
    ])
  })

  test('behavior: a provisioner with its ledger under the data dir; none without hosts', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'bpo-fromcfg-'))
    const { common } = createTestCommon()
    try {
      const base = { operatorId: 'op-1', stateDir: join(dataDir, 'ssh'), healthTimeoutMs: 1000, allowTestingSources: false, artifactAllowHosts: [] }
      const prov = createSshProvisionerFromConfig(common, { hosts }, base)!
      expect(prov.id).toBe('ssh')
      expect(prov.capacity()).toEqual([{ host: 'box-1', hourlyUsd: '0.085', region: 'eu-central', total: { vcpu: 8, memoryGiB: 16, storageGiB: 200 }, used: { vcpu: 0, memoryGiB: 0, storageGiB: 0 }, free: { vcpu: 8, memoryGiB: 16, storageGiB: 200 } }])
      await prov.close()
      expect(createSshProvisionerFromConfig(common, undefined, base)).toBeUndefined()
      expect(sshHostsFromConfig([{ ...hosts[0]!, workloadUser: 'bpo-workload' }])[0]!.workloadUser).toBe('bpo-workload')
      expect(() => createSshProvisionerFromConfig(common, { hosts: [{ ...hosts[0]!, workloadUser: 'Root;x' }] }, base)).toThrow(/workloadUser/)
      // [providers] artifact_allow_hosts reaches the provisioner: a malformed entry is refused at construction
      expect(() => createSshProvisionerFromConfig(common, { hosts }, { ...base, artifactAllowHosts: ['10.0.0.0/99'] })).toThrow(/allow-list/)
    } finally {
      rmSync(dataDir, { recursive: true, force: true })
    }
  })
})
