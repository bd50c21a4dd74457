import { describe, expect, test } from 'vitest'
import { usd } from './money.js'
import { planTier, replicasPaidFor, type TierName, type TierPolicy } from './tiers.js'

const tiers: Record<TierName, TierPolicy> = {
  basic: { minReplicas: 1, maxReplicas: 1 },
  standard: { minReplicas: 2, maxReplicas: 5 },
  premium: { minReplicas: 3, maxReplicas: 20, vcpu: 2, memoryGiB: 4, pricedReplicas: 6 },
}
const plan = (tier: TierName, o: Partial<Parameters<typeof planTier>[0]> = {}) => planTier({ tier, tiers, maxReplicas: 20, highAvailability: false, ...o })

describe('planTier', () => {
  test('default: replicas and autoscaling bounds of each tier', () => {
    expect(plan('basic')).toMatchObject({ replicas: 1, minReplicas: 1, maxReplicas: 1, pricedReplicas: 1, raise: {}, limitedBy: [] })
    // an autoscaling tier is priced at its maximum unless the operator says otherwise
    expect(plan('standard')).toMatchObject({ replicas: 2, minReplicas: 2, maxReplicas: 5, pricedReplicas: 5 })
    expect(plan('premium')).toMatchObject({ replicas: 3, maxReplicas: 20, pricedReplicas: 6, raise: { vcpu: 2, memoryGiB: 4 } })
  })

  test('args: highAvailability runs two at least', () => {
    expect(plan('basic', { highAvailability: true })).toMatchObject({ replicas: 2, maxReplicas: 2 })
  })

  test('behavior: the operator ceiling, the room and the payment each clamp, never below one replica', () => {
    expect(plan('premium', { maxReplicas: 2 })).toMatchObject({ replicas: 2, maxReplicas: 2, limitedBy: ['ceiling'] })
    expect(plan('premium', { fits: 2.7 })).toMatchObject({ replicas: 2, maxReplicas: 2, limitedBy: ['capacity'] })
    expect(plan('premium', { paysFor: 1 })).toMatchObject({ replicas: 1, maxReplicas: 1, limitedBy: ['payment'] })
    expect(plan('standard', { paysFor: 0, fits: 0 })).toMatchObject({ replicas: 1 })
    expect(plan('standard', { paysFor: 4 })).toMatchObject({ replicas: 2, maxReplicas: 4, limitedBy: [] })
  })
})

describe('replicasPaidFor', () => {
  test('default: floor(rate / (cost per replica × ratio))', () => {
    expect(replicasPaidFor(usd('1'), usd('0.3'), usd('1'))).toBe(3)
    expect(replicasPaidFor(usd('1'), usd('0.3'), usd('2'))).toBe(1)
    expect(replicasPaidFor(usd('0.1'), usd('0.3'), usd('1'))).toBe(0)
  })
  test('behavior: a disabled margin or a free replica pays for any number', () => {
    expect(replicasPaidFor(usd('1'), usd('0.3'), usd('0'))).toBe(Infinity)
    expect(replicasPaidFor(usd('1'), usd('0'), usd('1'))).toBe(Infinity)
  })
})
