/**
 * The operator's own machines (the TOML inventory): always present, no network. Provider `own`, instance type =
 * machine name, source `own-inventory`; the configured disk counts as included storage.
 */
import { usd } from '../../core/money.js'
import type { OwnMachine } from '../config.js'
import { defaultSanityLimits, screen } from '../sanity.js'
import type { ParseOptions, ParseResult, Rejected } from './types.js'

/** Offers for the inventory; a machine with an unreadable price or impossible spec is rejected with the reason. */
export function ownOffers(machines: readonly OwnMachine[], o: ParseOptions): ParseResult {
  const rejected: Rejected[] = []
  const offers = machines.flatMap((m, i) => {
    try {
      return [
        {
          provider: 'own' as const,
          region: m.region,
          instanceType: m.name,
          vcpu: m.vcpu,
          memoryGiB: m.memoryGiB,
          gpu: { count: m.gpu?.count ?? 0, model: m.gpu?.model },
          includedStorageGiB: m.storageGiB,
          hourlyUsd: usd(m.hourlyUsd),
          source: 'own-inventory',
          fetchedAt: o.fetchedAt,
        },
      ]
    } catch {
      rejected.push({ row: `own[${i}] ${m.name}`, why: `hourlyUsd ${JSON.stringify(m.hourlyUsd)} is not a decimal amount` })
      return []
    }
  })
  return screen({ offers, rejected }, o.limits ?? defaultSanityLimits)
}
