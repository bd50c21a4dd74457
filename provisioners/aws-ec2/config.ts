/**
 * The `[providers.aws]` TOML section (AWS EC2): credentials by reference, regions, image rule override, limits.
 * Registered by config/ (the lead); this module owns the schema and its defaults.
 */
import { z } from 'zod'
import { isSecretRef } from '../../config/secrets.js'

const secretRef = z.string().refine(isSecretRef, { error: 'secrets must be a reference (env:NAME or file:PATH), never a literal value' })
const region = z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/, { error: 'expected a region such as us-east-1' })
const cidr = z.string().regex(/^(\d{1,3}\.){3}\d{1,3}\/\d{1,2}$/, { error: 'expected an IPv4 CIDR such as "203.0.113.7/32"' })

export const awsEc2SectionSchema = z.strictObject({
  /** AWS access key id, as a secret reference (env:NAME or file:PATH). */
  access_key_id: secretRef,
  /** AWS secret access key, as a secret reference. */
  secret_access_key: secretRef,
  /** Regions this operator buys in (placement filters offers to these); at least one. */
  regions: z.array(region).min(1, { error: 'list at least one region, e.g. ["us-east-1"]' }),
  /** Image override per region ({ "us-east-1" = "ami-..." }); default: the newest Debian 12 AMI of Debian's account 136693071363. */
  images: z.record(region, z.string().regex(/^ami-[0-9a-f]{8,17}$/, { error: 'expected an AMI id such as ami-0123456789abcdef0' })).default({}),
  /** API endpoint override (tests, VPC endpoints), e.g. "http://127.0.0.1:4566"; default the regional AWS endpoint. */
  endpoint: z.url().optional(),
  /** The operator's SSH login private key (OpenSSH ed25519), as a secret reference; authorized as root on every VM. */
  ssh_key: secretRef,
  /** CIDR allowed to reach SSH (22/tcp) on the VMs: the daemon's public address. */
  ssh_source_cidr: cidr,
  /** Most VMs running at once across all deployments. */
  max_instances: z.number().int().positive().default(20),
  /** How long a VM may take to run and answer SSH, in ms. */
  boot_timeout_ms: z.number().int().positive().default(300_000),
  /** One API call's timeout, in ms (retries with backoff come on top). */
  api_timeout_ms: z.number().int().positive().default(30_000),
})

export type AwsEc2Section = z.infer<typeof awsEc2SectionSchema>
