import fc from 'fast-check'
import { describe, expect, test } from 'vitest'
import { reduce, type Ceilings, type OperatorDefaults, type Preferences, type Requirements, type TierName, type TierPolicy } from './spec.js'

const tiers: Record<TierName, TierPolicy> = {
  basic: { minReplicas: 1, maxReplicas: 1 },
  standard: { minReplicas: 2, maxReplicas: 5 },
  premium: { minReplicas: 3, maxReplicas: 20 },
}
const defaults: OperatorDefaults = { vcpu: 1, memoryGiB: 2, storageGiB: 10, regions: ['eu'], spotAllowed: false }
const ceilings: Ceilings = { vcpu: 8, memoryGiB: 32, storageGiB: 100, gpuCount: 2, replicas: 10 }
const req = (r: Partial<Requirements> = {}): Requirements => ({ vcpu: 0, memoryGiB: 0, storageGiB: 0, gpu: { count: 0 }, ports: [8080], ...r })

describe('reduce', () => {
  test('default: operator defaults fill what nobody asked for', () => {
    const r = reduce(req(), {}, defaults, ceilings, 'basic', tiers)
    expect(r).toEqual({
      ok: true,
      spec: {
        vcpu: 1, memoryGiB: 2, storageGiB: 10, gpu: { count: 0, model: undefined }, replicas: 1, minReplicas: 1, maxReplicas: 1,
        regions: ['eu'], spotAllowed: false, highAvailability: false, ports: [8080], tier: 'basic',
      },
    })
  })

  test.each([
    // [name, requirements, preferences, expected subset]
    ['requirements are floors', req({ vcpu: 2, memoryGiB: 4 }), {}, { vcpu: 2, memoryGiB: 4, storageGiB: 10 }],
    ['preferences raise floors', req({ vcpu: 2 }), { vcpu: 4 }, { vcpu: 4 }],
    ['preferences never lower floors', req({ vcpu: 4, memoryGiB: 8 }), { vcpu: 1, memoryGiB: 1 }, { vcpu: 4, memoryGiB: 8 }],
    ['a preference below the default still counts as asked', req(), { memoryGiB: 1 }, { memoryGiB: 1 }],
    ['customer regions replace operator regions', req(), { regions: ['us-east-1'] }, { regions: ['us-east-1'] }],
    ['empty customer regions keep the defaults', req(), { regions: [] }, { regions: ['eu'] }],
    ['spot preference wins over the default', req(), { spotAllowed: true }, { spotAllowed: true }],
    ['high availability means two replicas at least', req(), { highAvailability: true }, { replicas: 2, highAvailability: true, maxReplicas: 2 }],
    ['gpu model chosen by the customer when the blueprint names none', req({ gpu: { count: 1 } }), { gpuModel: 'A100' }, { gpu: { count: 1, model: 'A100' } }],
    ['gpu model preference ignored without gpus', req(), { gpuModel: 'A100' }, { gpu: { count: 0, model: undefined } }],
    ['ports are deduplicated and sorted', req({ ports: [9000, 80, 9000] }), {}, { ports: [80, 9000] }],
    ['exactly at the ceiling is allowed', req({ vcpu: 8, memoryGiB: 32, storageGiB: 100, gpu: { count: 2, model: 'H100' } }), {}, { vcpu: 8, gpu: { count: 2, model: 'H100' } }],
  ] as [string, Requirements, Preferences, object][])('args: %s', (_name, r, p, want) => {
    const out = reduce(r, p, defaults, ceilings, 'basic', tiers)
    expect(out.ok).toBe(true)
    if (out.ok) expect(out.spec).toMatchObject(want)
  })

  test.each([
    ['basic', 1, 1],
    ['standard', 2, 5],
    ['premium', 3, 10], // capped by ceilings.replicas
  ] as [TierName, number, number][])('args: tier %s', (tier, replicas, max) => {
    const out = reduce(req(), {}, defaults, ceilings, tier, tiers)
    expect(out.ok && [out.spec.replicas, out.spec.maxReplicas]).toEqual([replicas, max])
  })

  test.each([
    ['vcpu floor above the ceiling', req({ vcpu: 9 }), {}, /vcpu 9 above the operator's ceiling 8/],
    ['memory preference above the ceiling', req(), { memoryGiB: 64 }, /memoryGiB 64 above/],
    ['storage floor above the ceiling', req({ storageGiB: 101 }), {}, /storageGiB 101 above/],
    ['gpu count above the ceiling', req({ gpu: { count: 3 } }), {}, /gpu.count 3 above/],
  ] as [string, Requirements, Preferences, RegExp][])('error: %s is a rejection, never a clamp', (_n, r, p, msg) => {
    const out = reduce(r, p, defaults, ceilings, 'basic', tiers)
    expect(out.ok).toBe(false)
    if (!out.ok) {
      expect(out.reason).toBe('REQUIREMENTS_ABOVE_CEILING')
      expect(out.problems.join('\n')).toMatch(msg)
    }
  })

  test('error: tier replicas above the replica ceiling', () => {
    const out = reduce(req(), {}, defaults, { ...ceilings, replicas: 2 }, 'premium', tiers)
    expect(out).toEqual({ ok: false, reason: 'REQUIREMENTS_ABOVE_CEILING', problems: ["replicas 3 above the operator's ceiling 2"] })
  })

  test.each([
    ['negative vcpu', req({ vcpu: -1 }), {}],
    ['NaN memory preference', req(), { memoryGiB: Number.NaN }],
    ['infinite storage', req({ storageGiB: Infinity }), {}],
    ['fractional gpu count', req({ gpu: { count: 1.5 } }), {}],
    ['port out of range', req({ ports: [70000] }), {}],
    ['conflicting gpu model', req({ gpu: { count: 1, model: 'H100' } }), { gpuModel: 'A100' }],
  ] as [string, Requirements, Preferences][])('error: %s is malformed', (_n, r, p) => {
    const out = reduce(r, p, defaults, ceilings, 'basic', tiers)
    expect(out.ok === false && out.reason).toBe('MALFORMED_REQUEST')
  })

  test('error: unknown tier', () => {
    const out = reduce(req(), {}, defaults, ceilings, 'gold' as TierName, tiers)
    expect(out.ok === false && out.reason).toBe('MALFORMED_REQUEST')
  })

  test('behavior: property — floors are never lowered, caps never exceeded, rejection iff a floor is above a cap', () => {
    const n = fc.integer({ min: 0, max: 40 })
    fc.assert(
      fc.property(
        fc.record({ vcpu: n, memoryGiB: n, storageGiB: n, gpu: fc.record({ count: fc.integer({ min: 0, max: 4 }) }), ports: fc.constant([80] as number[]) }),
        fc.record({ vcpu: fc.option(n, { nil: undefined }), memoryGiB: fc.option(n, { nil: undefined }), storageGiB: fc.option(n, { nil: undefined }), highAvailability: fc.option(fc.boolean(), { nil: undefined }) }),
        fc.record({ vcpu: n, memoryGiB: n, storageGiB: n, gpuCount: fc.integer({ min: 0, max: 4 }), replicas: fc.integer({ min: 1, max: 30 }) }),
        fc.constantFrom<TierName>('basic', 'standard', 'premium'),
        (r, p, c, tier) => {
          const d = { ...defaults, vcpu: Math.min(1, c.vcpu), memoryGiB: Math.min(1, c.memoryGiB), storageGiB: Math.min(1, c.storageGiB) }
          const out = reduce(r, p, d, c, tier, tiers)
          const wantV = Math.max(r.vcpu, p.vcpu ?? 0)
          const wantM = Math.max(r.memoryGiB, p.memoryGiB ?? 0)
          const wantS = Math.max(r.storageGiB, p.storageGiB ?? 0)
          const replicas = Math.max(tiers[tier].minReplicas, p.highAvailability ? 2 : 0)
          const over = wantV > c.vcpu || wantM > c.memoryGiB || wantS > c.storageGiB || r.gpu.count > c.gpuCount || replicas > c.replicas
          if (over) return out.ok === false && out.reason === 'REQUIREMENTS_ABOVE_CEILING'
          if (!out.ok) return false
          const s = out.spec
          return (
            s.vcpu >= r.vcpu && s.memoryGiB >= r.memoryGiB && s.storageGiB >= r.storageGiB &&
            s.vcpu <= c.vcpu && s.memoryGiB <= c.memoryGiB && s.storageGiB <= c.storageGiB &&
            s.gpu.count === r.gpu.count && s.replicas === replicas && s.maxReplicas <= c.replicas && s.maxReplicas >= s.minReplicas
          )
        },
      ),
      { numRuns: 2000 },
    )
  })
})
