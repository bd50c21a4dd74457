/**
 * Boundaries of `cheapest`: a spec asking exactly a node's free storage (ThreeFold offers carry it as maxStorageGiB)
 * fits; one GiB more does not, and says why.
 */
import { describe, expect, test } from 'vitest'
import { usd } from '../core/money.js'
import { resourceSpec } from '../test/helpers/spec.js'
import { cheapest } from './select.js'
import type { OfferWithGpuPart } from './sources/types.js'

const node = (freeSsd: number): OfferWithGpuPart & { maxStorageGiB: number } => ({
  provider: 'threefold',
  region: 'be',
  instanceType: 'node-7/4c-8g',
  vcpu: 4,
  memoryGiB: 8,
  gpu: { count: 0 },
  includedStorageGiB: 0,
  storageUsdPerGiBMonth: usd('0.073'),
  source: 'test',
  fetchedAt: 0,
  hourlyUsd: usd('0.05'),
  maxStorageGiB: freeSsd,
})

describe('cheapest: storage at a node\'s free storage', () => {
  test('behavior: exactly the free storage fits; one GiB more is refused with the reason', () => {
    const exact = cheapest(resourceSpec({ vcpu: 2, memoryGiB: 4, storageGiB: 120, ports: [] }), [node(120)])
    expect(exact.ok).toBe(true)
    if (exact.ok) expect(exact.quote.offer.instanceType).toBe('node-7/4c-8g')
    const over = cheapest(resourceSpec({ vcpu: 2, memoryGiB: 4, storageGiB: 121, ports: [] }), [node(120)])
    expect(over.ok).toBe(false)
    if (!over.ok) expect(over.nearest[0]!.why.join('; ')).toMatch(/only 120 GiB storage free/)
  })
})
