/**
 * The `[providers.hetzner]` TOML section (Hetzner Cloud): API token by reference, locations, image, limits.
 * Registered by config/ (the lead); this module owns the schema and its defaults.
 */
import { z } from 'zod'
import { isSecretRef } from '../../config/secrets.js'

const secretRef = z.string().refine(isSecretRef, { error: 'secrets must be a reference (env:NAME or file:PATH), never a literal value' })
const cidr = z.string().regex(/^(\d{1,3}\.){3}\d{1,3}\/\d{1,2}$/, { error: 'expected an IPv4 CIDR such as "203.0.113.7/32"' })

export const hetznerSectionSchema = z.strictObject({
  /** Hetzner Cloud API token (read & write) of the project, as a secret reference (env:NAME or file:PATH). */
  token: secretRef,
  /** Locations this operator buys in (fsn1, nbg1, hel1, ash, hil, sin); at least one. */
  locations: z.array(z.string().regex(/^[a-z]{3}\d?$/, { error: 'expected a location such as fsn1' })).min(1, { error: 'list at least one location, e.g. ["fsn1"]' }),
  /** Image name or id every VM boots. */
  image: z.string().min(1).default('debian-12'),
  /** API base URL override (tests). */
  endpoint: z.url().default('https://api.hetzner.cloud/v1'),
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
  /** EUR -> USD rate used to express Hetzner's EUR prices (confirmHetznerPrice), as a decimal string. */
  eur_usd: z.string().regex(/^\d+(\.\d+)?$/, { error: 'expected a decimal string such as "1.08"' }).default('1.08'),
})

export type HetznerSection = z.infer<typeof hetznerSectionSchema>
