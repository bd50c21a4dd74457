import { describe, expect, test } from 'vitest'
import { accrueCost } from './services.js'
import type { ServiceRecord } from './state.js'

const rec = (o: Partial<ServiceRecord>): ServiceRecord =>
  ({
    replicas: 2,
    quote: { provider: 'own', target: 'local', region: 'local', instanceType: 'local', hourlyUsd: '0.36', totalHourlyUsd: '0.72', replicas: 2, source: 'own-targets' },
    ledger: { paid: '0', earned: '0', withdrawn: '0', refunded: '0', cloudCostUsd: '0' },
    ...o,
  }) as ServiceRecord

describe('accrueCost', () => {
  test('default: hourly price × replicas × elapsed time, exactly', () => {
    const r = rec({ costSince: '2026-01-01T00:00:00.000Z' })
    accrueCost(r, new Date('2026-01-01T00:00:10.000Z'))
    expect(r.ledger.cloudCostUsd).toBe('0.002') // 0.36 × 2 × 10/3600
    expect(r.ledger.replicaHours).toBe('0.005555556') // 2 × 10/3600, as it happens
    expect(r.costSince).toBe('2026-01-01T00:00:10.000Z')
  })
  test('behavior: nothing accrues at zero replicas or before the first mark', () => {
    const r = rec({ replicas: 0, costSince: '2026-01-01T00:00:00.000Z' })
    accrueCost(r, new Date('2026-01-01T01:00:00.000Z'))
    expect(r.ledger.cloudCostUsd).toBe('0')
    const first = rec({})
    accrueCost(first, new Date('2026-01-01T00:00:00.000Z'))
    expect(first.ledger.cloudCostUsd).toBe('0')
    expect(first.costSince).toBe('2026-01-01T00:00:00.000Z')
  })
  test('behavior: a gap longer than an hour counts as one hour', () => {
    const r = rec({ costSince: '2026-01-01T00:00:00.000Z' })
    accrueCost(r, new Date('2026-01-02T00:00:00.000Z'))
    expect(r.ledger.cloudCostUsd).toBe('0.72')
  })
  test('behavior: a cloud service at zero accrues its kept disks, not its compute', () => {
    const r = rec({ replicas: 0, state: 'scaled-to-zero', spec: { replicas: 2 } as ServiceRecord['spec'], costSince: '2026-01-01T00:00:00.000Z' })
    r.quote!.stoppedHourlyUsd = '0.001'
    accrueCost(r, new Date('2026-01-01T00:30:00.000Z'))
    expect(r.ledger.cloudCostUsd).toBe('0.001') // 0.001 × 2 replicas' disks × 0.5 h
    expect(r.ledger.replicaHours).toBeUndefined()
  })
})
