import fc from 'fast-check'
import { describe, expect, test } from 'vitest'
import { desiredReplicas, utilisationBetween, type AutoscaleParameters, type UtilisationSample } from './autoscale.js'

const S = 1000
const base = (o: Partial<AutoscaleParameters>): AutoscaleParameters => ({
  min: 2,
  max: 5,
  current: 2,
  samples: [],
  now: 1_000_000,
  target: 0.6,
  scaleUpWindowMs: 60 * S,
  scaleDownWindowMs: 300 * S,
  ...o,
})
/** Samples every 30 s over the last `spanS` seconds (plus one just older), all at `utilisation` with `replicas`. */
const steady = (now: number, spanS: number, utilisation: number, replicas: number): UtilisationSample[] =>
  Array.from({ length: Math.floor(spanS / 30) + 2 }, (_, k) => ({ at: now - (Math.floor(spanS / 30) + 1 - k) * 30 * S, utilisation, replicas }))

describe('desiredReplicas', () => {
  test('default: load at the target keeps the replicas', () => {
    expect(desiredReplicas(base({ samples: steady(1_000_000, 400, 0.6, 2) }))).toMatchObject({ replicas: 2, reason: 'steady' })
    // within the tolerance band too
    expect(desiredReplicas(base({ samples: steady(1_000_000, 400, 0.65, 2) })).replicas).toBe(2)
  })

  test('behavior: sustained load scales up to what brings utilisation to the target', () => {
    // 2 replicas at 90% = 1.8 vCPU-replicas of work; at 60% that needs 3
    expect(desiredReplicas(base({ samples: steady(1_000_000, 120, 0.9, 2) }))).toMatchObject({ replicas: 3, reason: 'up' })
    // far above: capped by the tier's maximum
    expect(desiredReplicas(base({ samples: steady(1_000_000, 120, 3, 2) }))).toMatchObject({ replicas: 5, reason: 'up' })
    // and by the step (default: at most doubling, or +4)
    expect(desiredReplicas(base({ max: 20, current: 2, samples: steady(1_000_000, 120, 6, 2) })).replicas).toBe(6)
    expect(desiredReplicas(base({ max: 20, current: 2, maxStepUp: 1, samples: steady(1_000_000, 120, 6, 2) })).replicas).toBe(3)
  })

  test('behavior: a spike shorter than the scale-up window does not scale up', () => {
    const samples = [...steady(1_000_000 - 30 * S, 120, 0.5, 2), { at: 1_000_000, utilisation: 2, replicas: 2 }]
    expect(desiredReplicas(base({ samples }))).toMatchObject({ replicas: 2 })
    // with no scale-up window the latest sample decides
    expect(desiredReplicas(base({ samples, scaleUpWindowMs: 0 }))).toMatchObject({ replicas: 5, reason: 'up' })
  })

  test('behavior: no scale-up before the history covers the window', () => {
    const samples = [{ at: 1_000_000 - 30 * S, utilisation: 2, replicas: 2 }, { at: 1_000_000, utilisation: 2, replicas: 2 }]
    expect(desiredReplicas(base({ samples })).replicas).toBe(2)
  })

  test('behavior: scale down only after load stayed low for the whole scale-down window', () => {
    const low = steady(1_000_000, 400, 0.1, 5)
    expect(desiredReplicas(base({ current: 5, samples: low }))).toMatchObject({ replicas: 2, reason: 'down' }) // never below the paid minimum
    // one busy sample inside the window holds the replicas up
    const withSpike = low.map((s, k) => (k === 5 ? { ...s, utilisation: 0.6 } : s))
    expect(desiredReplicas(base({ current: 5, samples: withSpike })).replicas).toBe(5)
    // low for less than the window: nothing yet
    expect(desiredReplicas(base({ current: 5, samples: steady(1_000_000, 200, 0.1, 5) })).replicas).toBe(5)
    // moderately lower load scales down part of the way: 5 × 0.3 = 1.5 busy replicas, at 60% ceil(2.5) = 3
    expect(desiredReplicas(base({ current: 5, samples: steady(1_000_000, 400, 0.3, 5) })).replicas).toBe(3)
  })

  test('behavior: no data or stale data changes nothing but the bounds', () => {
    expect(desiredReplicas(base({ current: 3 }))).toEqual({ replicas: 3, reason: 'no-data' })
    expect(desiredReplicas(base({ current: 3, samples: steady(1_000_000 - 600 * S, 400, 3, 3) }))).toEqual({ replicas: 3, reason: 'no-data' })
    // a tier change moved the bounds: clamp at once
    expect(desiredReplicas(base({ current: 9 }))).toEqual({ replicas: 5, reason: 'bounds' })
    expect(desiredReplicas(base({ current: 1, samples: steady(1_000_000, 400, 0.6, 1) }))).toMatchObject({ replicas: 2, reason: 'bounds' })
  })

  test('error: bad bounds or target', () => {
    expect(() => desiredReplicas(base({ min: 3, max: 2 }))).toThrow(RangeError)
    expect(() => desiredReplicas(base({ target: 0 }))).toThrow(RangeError)
  })

  test('behavior: whatever the samples, the answer stays within min..max and moves only in the direction of the load', () => {
    const sample = fc.record({ dt: fc.integer({ min: 0, max: 600 }), utilisation: fc.double({ min: 0, max: 8, noNaN: true }), replicas: fc.integer({ min: 1, max: 30 }) })
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 10 }), fc.integer({ min: 0, max: 20 }), fc.integer({ min: 0, max: 40 }), fc.array(sample, { maxLength: 30 }), (min, extra, current, raw) => {
        const max = min + extra
        const now = 10_000_000
        const samples = raw.map((s) => ({ at: now - s.dt * S, utilisation: s.utilisation, replicas: s.replicas })).sort((a, b) => a.at - b.at)
        const d = desiredReplicas(base({ min, max, current, samples, now }))
        expect(d.replicas).toBeGreaterThanOrEqual(min)
        expect(d.replicas).toBeLessThanOrEqual(max)
        const bounded = Math.min(max, Math.max(min, current))
        if (d.reason === 'up') expect(d.replicas).toBeGreaterThan(bounded)
        if (d.reason === 'down') expect(d.replicas).toBeLessThan(bounded)
        if (d.reason === 'steady' || d.reason === 'no-data') expect(d.replicas).toBe(current)
      }),
      { numRuns: 500 },
    )
  })
})

describe('utilisationBetween', () => {
  test('default: CPU seconds over elapsed seconds over vCPU, averaged over the replicas', () => {
    const prev = { at: 0, replicas: [{ index: 0, id: 'a', cpuSeconds: 10 }, { index: 1, id: 'b', cpuSeconds: 5 }] }
    const cur = { at: 10_000, replicas: [{ index: 0, id: 'a', cpuSeconds: 14 }, { index: 1, id: 'b', cpuSeconds: 6 }] }
    // replica 0: 4 s of 10 s on 0.5 vCPU = 0.8; replica 1: 1/10/0.5 = 0.2
    expect(utilisationBetween(prev, cur, 0.5)).toEqual({ at: 10_000, utilisation: 0.5, replicas: 2 })
  })

  test('behavior: a restarted or new replica (another id, or a counter that went back) is left out', () => {
    const prev = { at: 0, replicas: [{ index: 0, id: 'a', cpuSeconds: 10 }, { index: 1, id: 'b', cpuSeconds: 5 }] }
    const cur = { at: 10_000, replicas: [{ index: 0, id: 'a2', cpuSeconds: 1 }, { index: 1, id: 'b', cpuSeconds: 7 }, { index: 2, id: 'c', cpuSeconds: 0 }] }
    expect(utilisationBetween(prev, cur, 1)).toEqual({ at: 10_000, utilisation: 0.2, replicas: 3 })
    expect(utilisationBetween(prev, { at: 10_000, replicas: [{ index: 0, id: 'a', cpuSeconds: 9 }] }, 1)).toBeUndefined()
    expect(utilisationBetween(prev, { ...prev }, 1)).toBeUndefined()
  })

  test('behavior: no CPU limit counts one vCPU per replica', () => {
    const prev = { at: 0, replicas: [{ index: 0, id: 'a', cpuSeconds: 0 }] }
    expect(utilisationBetween(prev, { at: 2_000, replicas: [{ index: 0, id: 'a', cpuSeconds: 1 }] }, 0)!.utilisation).toBe(0.5)
  })
})
