/**
 * Ownership tags (EC2) / labels (Hetzner) carried by every cloud resource the daemon creates: one rule, used by
 * every cloud driver, so `listOwned` and the orphan sweep find exactly this operator's resources.
 */

/** Tag keys; values satisfy both EC2 tag and Hetzner label syntax (<= 63 chars of [a-z0-9._-]). */
export const TAG = {
  operator: 'bpo-operator',
  deployment: 'bpo-deployment',
  service: 'bpo-service',
  replica: 'bpo-replica',
  generation: 'bpo-generation',
  role: 'bpo-role',
} as const

export type ResourceRole = 'vm' | 'firewall' | 'volume'

export type OwnershipParameters = {
  operatorId: string
  deploymentId: string
  serviceId: string
  role: ResourceRole
  replica?: number
  generation?: number
}

/** The tags of one resource. */
export function ownershipTags(p: OwnershipParameters): Record<string, string> {
  const t: Record<string, string> = {
    [TAG.operator]: p.operatorId,
    [TAG.deployment]: p.deploymentId,
    // service ids are uint256 decimals: a label value holds at most 63 characters
    [TAG.service]: p.serviceId.length <= 63 ? p.serviceId : p.serviceId.slice(-63),
    [TAG.role]: p.role,
  }
  if (p.replica !== undefined) t[TAG.replica] = String(p.replica)
  if (p.generation !== undefined) t[TAG.generation] = String(p.generation)
  return t
}

/** A resource name made of the deployment id and a suffix, at most `max` characters (DNS label rules). */
export function resourceName(deploymentId: string, suffix: string, max = 63): string {
  const name = `${deploymentId}-${suffix}`
  return name.length <= max ? name : `${deploymentId.slice(0, max - suffix.length - 1).replace(/-+$/, '')}-${suffix}`
}
