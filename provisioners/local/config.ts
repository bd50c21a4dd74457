/** `[providers.local]`: child processes on the daemon's own machine, one fixed pool priced by `hourly_usd`. */
import { z } from 'zod'
import { usd } from '../../core/money.js'
import { decimal, nonNeg, portRange, posixUser } from '../../config/fields.js'

export const localSection = z
  .strictObject({
    enabled: z.boolean().default(true),
    region: z.string().min(1).default('local'),
    vcpu: nonNeg('vcpu').default(2),
    memory_gib: nonNeg('memory in GiB').default(4),
    storage_gib: nonNeg('storage in GiB').default(20),
    /** What running a service here costs the operator, USD per hour per replica. */
    hourly_usd: decimal('USD per hour').default(usd('0.01')),
    port_range: portRange.default([20000, 20999]),
    /** Run blueprints' `testing` sources (development only). */
    allow_test_sources: z.boolean().default(false),
    /**
     * Run replicas as this (existing, unprivileged) user, through setpriv; the daemon must run as root. The
     * workload then cannot rewrite the daemon's state, the artifacts, manifests or logs, nor leave its cgroups.
     */
    workload_user: posixUser.optional(),
    /**
     * Container sources with podman on this machine: "auto" runs them where a start-up check (one real container,
     * nothing pulled) passes, else says why in /api/status and `config check`; "off" never. Default "auto".
     */
    containers: z.enum(['auto', 'off']).default('auto'),
  })
  .superRefine((l, ctx) => {
    if (l.port_range[0] > l.port_range[1]) ctx.addIssue({ code: 'custom', path: ['port_range'], message: `got [${l.port_range.join(', ')}], expected [low, high]` })
  })
  .transform((l) => ({
    enabled: l.enabled,
    region: l.region,
    vcpu: l.vcpu,
    memoryGiB: l.memory_gib,
    storageGiB: l.storage_gib,
    hourlyUsd: l.hourly_usd,
    portRange: l.port_range,
    allowTestSources: l.allow_test_sources,
    containers: l.containers,
    ...(l.workload_user && { workloadUser: l.workload_user }),
  }))

export type LocalSection = z.output<typeof localSection>
