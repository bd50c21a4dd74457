/** The Hetzner Cloud target: the shared cloud lifecycle over the Hetzner driver, built from `[providers.hetzner]`. */
import { join } from 'node:path'
import type { Common } from '../../core/common.js'
import { resolveSecret, type Secret } from '../../config/secrets.js'
import { createCloudProvisioner, type CloudProvisioner, type CloudProvisionerParameters } from '../cloud/createCloudProvisioner.js'
import type { HetznerSection } from './config.js'
import { createHetznerDriver } from './createHetznerDriver.js'

export type HetznerProvisionerOptions = {
  operatorId: string
  /** The daemon's data directory; the target keeps its files in `<dataDir>/hetzner`. */
  dataDir: string
  /** Resolve a secret reference (default config/secrets resolveSecret). */
  secret?: (ref: string) => Secret
  ssh?: CloudProvisionerParameters['ssh']
  /** How often a booting VM is polled, ms (default 1_000). */
  pollMs?: number
}

/** Create the Hetzner Cloud provisioner from its TOML section. */
export function createHetznerProvisioner(common: Common, section: HetznerSection, o: HetznerProvisionerOptions): CloudProvisioner {
  const secret = o.secret ?? ((ref: string) => resolveSecret(ref))
  const driver = createHetznerDriver(common, { operatorId: o.operatorId, token: secret(section.token), endpoint: section.endpoint, image: section.image, apiTimeoutMs: section.api_timeout_ms })
  return createCloudProvisioner(common, {
    driver,
    operatorId: o.operatorId,
    dataDir: join(o.dataDir, 'hetzner'),
    loginKey: secret(section.ssh_key),
    sshSourceCidr: section.ssh_source_cidr,
    regions: section.locations,
    maxInstances: section.max_instances,
    bootTimeoutMs: section.boot_timeout_ms,
    ...(o.pollMs ? { pollMs: o.pollMs } : {}),
    ...(o.ssh ? { ssh: o.ssh } : {}),
  })
}
