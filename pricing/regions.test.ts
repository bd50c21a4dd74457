import { describe, expect, test } from 'vitest'
import { usd } from '../core/money.js'
import type { Offer } from '../core/offer.js'
import { resourceSpec } from '../test/helpers/spec.js'
import { continentOf, regionMatches } from './regions.js'
import { cheapest } from './select.js'

describe('regionMatches', () => {
  test.each([
    ['europe-west1', 'gcp', 'europe-west1', true],
    ['europe-west1', 'gcp', 'europe-west10', false],
    ['europe-west1', 'gcp', 'europe-west12', false],
    ['us-east1', 'gcp', 'us-east10', false],
    ['europe-west1', 'gcp', 'europe-west1-b', true],
    ['nbg1', 'hetzner', 'nbg10', false],
    ['us-east', 'gcp', 'us-east1', true],
    ['us-east', 'aws', 'us-east-1', true],
    ['europe-west', 'gcp', 'europe-west10', true],
    ['us-east-', 'aws', 'us-east-1', true],
  ] as const)('args: %s ~ %s %s → %s', (w, p, r, want) => {
    expect(regionMatches(w, p, r)).toBe(want)
  })

  test('behavior: cheapest for europe-west1 never quotes the cheaper europe-west10 or europe-west12', () => {
    const off = (region: string, hourly: string): Offer => ({
      provider: 'gcp', region, instanceType: `n2-${region}`, vcpu: 4, memoryGiB: 16, gpu: { count: 0 },
      includedStorageGiB: 0, hourlyUsd: usd(hourly), source: 'test', fetchedAt: 0,
    })
    const offers = [off('europe-west10', '0.5'), off('europe-west12', '0.6'), off('europe-west1', '1')]
    const r = cheapest(resourceSpec({ ports: [], regions: ['europe-west1'] }), offers, { top: 3 })
    expect(r.ok && [r.quote, ...r.alternatives].map((q) => q.offer.region)).toEqual(['europe-west1'])
  })
})

describe('continentOf', () => {
  test.each([
    ['aws', 'ap-southeast-2', 'oc'],
    ['aws', 'ap-southeast-4', 'oc'],
    ['aws', 'ap-southeast-6', 'oc'],
    ['aws', 'ap-southeast-1', 'asia'],
    ['aws', 'ap-southeast-5', 'asia'],
    ['aws', 'ap-northeast-1', 'asia'],
    ['gcp', 'australia-southeast1', 'oc'],
  ] as const)('args: %s %s → %s', (p, r, want) => {
    expect(continentOf(p, r)).toBe(want)
  })

  test('behavior: AWS Sydney matches oc, not asia', () => {
    expect(regionMatches('oc', 'aws', 'ap-southeast-2')).toBe(true)
    expect(regionMatches('asia', 'aws', 'ap-southeast-2')).toBe(false)
  })
})
