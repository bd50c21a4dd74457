/**
 * What every target has promised, kept incrementally (issue 10): each service's contribution is recorded when its
 * record changes, so a quote or a scale-up reads a total instead of scanning every service. A scaled-to-zero service
 * keeps its place; closed and refunded ones hold nothing.
 */
import type { ServiceRecord } from '../state.js'

export type Use = { vcpu: number; memoryGiB: number; storageGiB: number; instances: number }

const HOLDING = new Set(['provisioning', 'active', 'scaled-to-zero', 'terminating'])
const zero = (): Use => ({ vcpu: 0, memoryGiB: 0, storageGiB: 0, instances: 0 })

/** The capacity one service holds on its target (undefined: none). */
export function contributionOf(r: Readonly<ServiceRecord>): { target: string; use: Use } | undefined {
  if (!r.quote || !r.spec || !HOLDING.has(r.state)) return undefined
  const n = Math.max(r.replicas, r.spec.replicas)
  return { target: r.quote.target, use: { vcpu: r.spec.vcpu * n, memoryGiB: r.spec.memoryGiB * n, storageGiB: r.spec.storageGiB, instances: n } }
}

export type CapacityBook = {
  /** Set (or clear, with undefined) one service's contribution from its record. */
  set(serviceId: string, r: Readonly<ServiceRecord> | undefined): void
  /** Start over from every record (start-up, or after a failed state write). */
  rebuild(services: Readonly<Record<string, ServiceRecord>>): void
  usedOn(target: string): Readonly<Use>
}

export function createCapacityBook(): CapacityBook {
  const totals = new Map<string, Use>()
  const parts = new Map<string, { target: string; use: Use }>()
  const add = (target: string, u: Use, sign: 1 | -1) => {
    const t = totals.get(target) ?? zero()
    t.vcpu += sign * u.vcpu
    t.memoryGiB += sign * u.memoryGiB
    t.storageGiB += sign * u.storageGiB
    t.instances += sign * u.instances
    totals.set(target, t)
  }
  const book: CapacityBook = {
    set(id, r) {
      const old = parts.get(id)
      if (old) add(old.target, old.use, -1)
      const c = r && contributionOf(r)
      if (c) {
        parts.set(id, c)
        add(c.target, c.use, 1)
      } else parts.delete(id)
    },
    rebuild(services) {
      totals.clear()
      parts.clear()
      for (const [id, r] of Object.entries(services)) book.set(id, r)
    },
    usedOn: (target) => totals.get(target) ?? zero(),
  }
  return book
}
