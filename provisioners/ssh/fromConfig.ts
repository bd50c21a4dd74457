/**
 * Map the operator's validated `[[providers.ssh.hosts]]` to SshHost values (revealing each private key only here)
 * and create the SSH provisioner from its section.
 */
import type { Common } from '../../core/common.js'
import type { SshSection } from './config.js'
import { createSshProvisioner, type SshProvisioner, type SshProvisionerParameters } from './createSshProvisioner.js'
import type { SshHost } from './types.js'

export type SshHostsConfig = SshSection['hosts']

/** SshHost values for the provisioner; the private keys are revealed from their Secret references here. */
export function sshHostsFromConfig(hosts: SshHostsConfig): SshHost[] {
  return hosts.map((h) => ({
    name: h.name,
    address: h.address,
    port: h.port,
    user: h.user,
    privateKey: h.privateKey.reveal(),
    hostKey: h.hostKey,
    capacity: { vcpu: h.vcpu, memoryGiB: h.memoryGiB, storageGiB: h.storageGiB },
    hourlyUsd: h.hourlyUsd.toString(),
    region: h.region,
    labels: { ...h.labels },
    remoteRoot: h.remoteRoot,
    ports: { from: h.portRange[0], to: h.portRange[1] },
    ...(h.workloadUser && { workloadUser: h.workloadUser }),
    ...(h.workloadUids && { workloadUids: { from: h.workloadUids[0], to: h.workloadUids[1] } }),
  }))
}

/** The SSH provisioner of the `[providers.ssh]` section (undefined when no hosts are configured). */
export function createSshProvisionerFromConfig(
  common: Common,
  section: SshSection | undefined,
  base: Pick<SshProvisionerParameters, 'operatorId' | 'stateDir' | 'healthTimeoutMs' | 'allowTestingSources' | 'artifactAllowHosts'>,
  o: Partial<SshProvisionerParameters> = {},
): SshProvisioner | undefined {
  const hosts = section?.hosts ?? []
  if (!hosts.length) return undefined
  return createSshProvisioner(common, { ...base, hosts: sshHostsFromConfig(hosts), ...o })
}
