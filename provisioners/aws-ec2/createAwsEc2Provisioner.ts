/** The AWS EC2 target: the shared cloud lifecycle over the EC2 driver, built from the `[providers.aws]` section. */
import type { EC2Client } from '@aws-sdk/client-ec2'
import { join } from 'node:path'
import type { Common } from '../../core/common.js'
import { resolveSecret, type Secret } from '../../config/secrets.js'
import { createCloudProvisioner, type CloudProvisioner, type CloudProvisionerParameters } from '../cloud/createCloudProvisioner.js'
import type { AwsEc2Section } from './config.js'
import { createEc2Driver } from './createEc2Driver.js'

export type AwsEc2ProvisionerOptions = {
  operatorId: string
  /** The daemon's data directory; the target keeps its files in `<dataDir>/aws`. */
  dataDir: string
  /** Resolve a secret reference (default config/secrets resolveSecret). */
  secret?: (ref: string) => Secret
  /** Passed to the per-VM SSH provisioners (artifact allow list, health timeouts, testing sources). */
  ssh?: CloudProvisionerParameters['ssh']
  /** How often a booting VM is polled, ms (default 1_000). */
  pollMs?: number
}

export type AwsEc2Provisioner = CloudProvisioner & {
  /** The EC2 client of a region (for confirmEc2SpotPrice). */
  clientFor(region: string): EC2Client
}

/** Create the AWS EC2 provisioner from its TOML section. */
export function createAwsEc2Provisioner(common: Common, section: AwsEc2Section, o: AwsEc2ProvisionerOptions): AwsEc2Provisioner {
  const secret = o.secret ?? ((ref: string) => resolveSecret(ref))
  const driver = createEc2Driver(common, {
    operatorId: o.operatorId,
    accessKeyId: secret(section.access_key_id),
    secretAccessKey: secret(section.secret_access_key),
    ...(section.endpoint ? { endpoint: section.endpoint } : {}),
    images: section.images,
    apiTimeoutMs: section.api_timeout_ms,
  })
  const prov = createCloudProvisioner(common, {
    driver,
    operatorId: o.operatorId,
    dataDir: join(o.dataDir, 'aws'),
    loginKey: secret(section.ssh_key),
    sshSourceCidr: section.ssh_source_cidr,
    regions: section.regions,
    maxInstances: section.max_instances,
    bootTimeoutMs: section.boot_timeout_ms,
    ...(o.pollMs ? { pollMs: o.pollMs } : {}),
    ...(o.ssh ? { ssh: o.ssh } : {}),
  })
  return Object.assign(prov, { clientFor: (region: string) => driver.clientFor(region) })
}
