/**
 * Which provisioning errors move placement to the next candidate, and how far the block reaches (SkyPilot's failover:
 * a capacity error blocks the offer, a quota error the region, an auth error the provider).
 */
import { BaseError, walk } from '../../core/errors.js'

export type FailoverKind = 'capacity' | 'quota' | 'region-unavailable' | 'price-changed' | 'auth'
export type FailoverScope = 'offer' | 'region' | 'provider'
export type FailoverClass = { kind: FailoverKind; scope: FailoverScope }

const KINDS: readonly string[] = ['capacity', 'quota', 'region-unavailable', 'price-changed', 'auth']
const SCOPES: readonly string[] = ['offer', 'region', 'provider']

const classOf = (x: unknown): FailoverClass | undefined => {
  const f = x as Partial<FailoverClass> | undefined
  return f && typeof f === 'object' && KINDS.includes(f.kind as string) && SCOPES.includes(f.scope as string) ? { kind: f.kind!, scope: f.scope! } : undefined
}

/** The failover class an error (or one of its causes) carries: `err.failover` or `err.meta.failover`. */
export function failoverOf(err: unknown): FailoverClass | undefined {
  let found: FailoverClass | undefined
  walk(err, (e) => {
    if (found) return true
    const c = classOf((e as { failover?: unknown }).failover) ?? (e instanceof BaseError ? classOf(e.meta?.failover) : undefined)
    if (c) found = c
    return !!c
  })
  return found
}
