/** What the SSH target reports of its ledger: the placements it holds and each host's total, reserved and free capacity. */
import type { SshContext } from './context.js'
import { usedByHost } from './ledger.js'
import type { HostCapacity, Placement } from './types.js'

/** Every deployment placed by this operator, from the ledger (copies). */
export const placements = (ctx: SshContext): Placement[] => ctx.ledger.all().map((x) => structuredClone(x))

/** Total, reserved and free capacity per known host. */
export function capacity(ctx: SshContext): HostCapacity[] {
  const used = usedByHost(ctx.ledger.all())
  return [...ctx.hosts.values()].map((h) => {
    const u = used.get(h.name) ?? { vcpu: 0, memoryGiB: 0, storageGiB: 0 }
    return {
      host: h.name,
      hourlyUsd: h.hourlyUsd,
      region: h.region,
      total: { ...h.capacity },
      used: u,
      free: { vcpu: h.capacity.vcpu - u.vcpu, memoryGiB: h.capacity.memoryGiB - u.memoryGiB, storageGiB: h.capacity.storageGiB - u.storageGiB },
    }
  })
}
