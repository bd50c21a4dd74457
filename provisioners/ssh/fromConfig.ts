/**
 * Map the operator's validated `[[providers.ssh.hosts]]` to SshHost values (revealing each private key only here)
 * and create the SSH provisioner from an OperatorConfig.
 */
import { join } from 'node:path'
import type { OperatorConfig } from '../../config/load.js'
import type { Common } from '../../core/common.js'
import { createSshProvisioner, type SshProvisioner, type SshProvisionerParameters } from './createSshProvisioner.js'
import type { SshHost } from './types.js'

export type SshHostsConfig = NonNullable<OperatorConfig['providers']['ssh']>['hosts']

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

/** The SSH provisioner of an operator config (undefined when no SSH hosts are configured). State in `<dataDir>/ssh`. */
export function createSshProvisionerFromConfig(common: Common, cfg: OperatorConfig, o: Partial<SshProvisionerParameters> = {}): SshProvisioner | undefined {
  const hosts = cfg.providers.ssh?.hosts ?? []
  if (!hosts.length) return undefined
  return createSshProvisioner(common, {
    operatorId: cfg.operator.id,
    hosts: sshHostsFromConfig(hosts),
    stateDir: join(cfg.operator.dataDir, 'ssh'),
    healthTimeoutMs: cfg.deploy.healthTimeoutMs,
    allowTestingSources: cfg.providers.local?.allowTestSources ?? false,
    artifactAllowHosts: cfg.providers.artifactAllowHosts ?? [],
    ...o,
  })
}
