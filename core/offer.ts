/**
 * Offers (capacity for sale, from a price source) and Quotes (an offer chosen for a spec, with its hourly cost).
 */
import type { Decimal } from 'decimal.js'
import type { ResourceSpec } from './spec.js'

/** Providers the catalog knows. `own` is the operator's own machines (inventory in the TOML file). */
export type ProviderId =
  | 'aws'
  | 'gcp'
  | 'azure'
  | 'digitalocean'
  | 'vultr'
  | 'hetzner'
  | 'threefold'
  | 'lambda'
  | 'runpod'
  | 'vast'
  | 'own'

export type Offer = {
  provider: ProviderId
  region: string
  /** Availability zone where the source has one. */
  zone?: string | undefined
  instanceType: string
  vcpu: number
  memoryGiB: number
  gpu: { count: number; model?: string | undefined; memoryGiB?: number | undefined }
  /** Storage included in the hourly price, GiB (0 if billed separately). */
  includedStorageGiB: number
  /** On-demand price, USD per hour. */
  hourlyUsd: Decimal
  /** Spot / preemptible price, USD per hour, when the source has one. */
  spotHourlyUsd?: Decimal | undefined
  /** Extra USD per GiB-month of storage beyond the included amount, if known. */
  storageUsdPerGiBMonth?: Decimal | undefined
  /** USD per hour for a public IPv4 address, if billed separately. */
  ipv4HourlyUsd?: Decimal | undefined
  /** Source id, e.g. "skypilot-aws", "vultr-plans". */
  source: string
  /** When the source data was fetched (ms since epoch). */
  fetchedAt: number
}

export type CostBreakdown = {
  /** Per replica, USD per hour. */
  hostUsd: Decimal
  gpuUsd: Decimal
  storageUsd: Decimal
  ipv4Usd: Decimal
  /** host + gpu + storage + ipv4, per replica. */
  perReplicaUsd: Decimal
  /** perReplicaUsd × replicas. */
  totalUsd: Decimal
}

export type Quote = {
  offer: Offer
  spec: ResourceSpec
  spot: boolean
  replicas: number
  breakdown: CostBreakdown
}
