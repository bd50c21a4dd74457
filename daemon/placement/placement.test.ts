import { describe, expect, test } from 'vitest'
import { createTestCommon } from '../../core/common.js'
import { usd } from '../../core/money.js'
import type { Offer } from '../../core/offer.js'
import { reduce, type ResourceSpec } from '../../core/spec.js'
import { ProvisionError } from '../../provisioners/errors.js'
import type { Provisioner } from '../../provisioners/types.js'
import type { Target, TargetRegistry } from '../ports.js'
import { cloudTarget, ownTarget } from '../providers.js'
import { failoverOf } from './failover.js'
import { createPlacement, type PlacementSettings } from './placement.js'

const { common } = createTestCommon()
const prov = (id: string): Provisioner => ({ id, sourceKinds: ['native', 'container'] }) as unknown as Provisioner
const offer = (o: Partial<Offer> & Pick<Offer, 'provider' | 'region' | 'instanceType'>): Offer => ({
  vcpu: 2,
  memoryGiB: 4,
  gpu: { count: 0 },
  includedStorageGiB: 50,
  hourlyUsd: usd('0.05'),
  source: 'test',
  fetchedAt: Date.now(),
  ...o,
})
const catalog: Offer[] = [
  offer({ provider: 'aws', region: 'eu-west-1', instanceType: 't3.medium', hourlyUsd: usd('0.0456'), spotHourlyUsd: usd('0.014') }),
  offer({ provider: 'aws', region: 'us-east-1', instanceType: 't3.medium', hourlyUsd: usd('0.0416') }),
  offer({ provider: 'aws', region: 'eu-west-1', instanceType: 't3.micro', vcpu: 2, memoryGiB: 1, hourlyUsd: usd('0.0114') }),
  offer({ provider: 'hetzner', region: 'fsn1', instanceType: 'cx22', hourlyUsd: usd('0.0065') }),
  offer({ provider: 'hetzner', region: 'nbg1', instanceType: 'cx22', hourlyUsd: usd('0.0065') }),
  offer({ provider: 'vultr', region: 'ams', instanceType: 'vc2-2c-4gb', hourlyUsd: usd('0.001') }), // no enabled target: informs quote only
]
const registry = (list: Target[]): TargetRegistry => ({ list: () => list, byName: (n) => list.find((t) => t.name === n), provisioners: () => [], close: async () => {} })
const targets = () =>
  registry([
    ownTarget({ name: 'local', provisioner: prov('local'), region: 'local', vcpu: 4, memoryGiB: 8, storageGiB: 100, hourlyUsd: usd('0.02') }),
    cloudTarget({ name: 'aws', provider: 'aws', provisioner: prov('aws-ec2'), regions: ['eu-west-1', 'us-east-1'], catalogOffers: () => catalog }),
    cloudTarget({ name: 'hetzner', provider: 'hetzner', provisioner: prov('hetzner'), regions: ['fsn1'], catalogOffers: () => catalog }),
  ])
const settings = (o: Partial<PlacementSettings> = {}): PlacementSettings => ({ mode: 'cheapest', providers: [], maxAttempts: 5, cooldownMs: 60_000, confirmPriceOlderThanMs: 1e12, perTarget: 8, ...o })
const spec = (o: Partial<ResourceSpec> = {}): ResourceSpec => {
  const r = reduce({ vcpu: 2, memoryGiB: 2, storageGiB: 10, gpu: { count: 0 }, ports: [8080] }, {}, { vcpu: 1, memoryGiB: 1, storageGiB: 1, regions: [], spotAllowed: false }, { vcpu: 16, memoryGiB: 64, storageGiB: 500, gpuCount: 0, replicas: 20 }, 'basic', {
    basic: { minReplicas: 1, maxReplicas: 1 },
    standard: { minReplicas: 2, maxReplicas: 5 },
    premium: { minReplicas: 3, maxReplicas: 20 },
  })
  if (!r.ok) throw new Error('spec')
  return { ...r.spec, ...o }
}
const sources = [{ kind: 'native', url: 'https://example.org/x', sha256: 'a'.repeat(64) }] as const
const names = (r: ReturnType<ReturnType<typeof createPlacement>['rank']>) => r.candidates.map((c) => `${c.target.name}/${c.offer.region}/${c.offer.instanceType}${c.spot ? '/spot' : ''}`)

describe('placement.rank', () => {
  test('default: own targets and enabled clouds compete on price; a provider without a target is never bought', () => {
    const p = createPlacement(common, { settings: settings(), targets: targets() })
    const r = p.rank({ spec: spec(), sources, preferences: {} })
    expect(names(r)).toEqual(['hetzner/fsn1/cx22', 'local/local/local', 'aws/us-east-1/t3.medium', 'aws/eu-west-1/t3.medium'])
    // the account's regions filter the catalog (nbg1 is not enabled), vultr has no target at all
    expect(r.candidates.some((c) => c.offer.region === 'nbg1' || c.offer.provider === 'vultr')).toBe(false)
    expect(Object.fromEntries(r.rejected)).toEqual({ 'too little memory': 1 })
  })

  test('args: spot allowed by the spec buys the spot price', () => {
    const p = createPlacement(common, { settings: settings(), targets: targets() })
    const r = p.rank({ spec: spec({ spotAllowed: true }), sources, preferences: {} })
    expect(names(r)).toContain('aws/eu-west-1/t3.medium/spot')
    expect(r.candidates.find((c) => c.spot)!.totalUsd.toString()).toBe('0.014')
  })

  test('args: mode own and mode preferred', () => {
    const own = createPlacement(common, { settings: settings({ mode: 'own' }), targets: targets() }).rank({ spec: spec(), sources, preferences: {} })
    expect(names(own)).toEqual(['local/local/local'])
    expect(own.rejected.get('placement mode "own": clouds not used')).toBe(2)
    const pref = createPlacement(common, { settings: settings({ mode: 'preferred', providers: ['aws', 'own'] }), targets: targets() }).rank({ spec: spec(), sources, preferences: {} })
    expect(names(pref)).toEqual(['aws/us-east-1/t3.medium', 'aws/eu-west-1/t3.medium', 'local/local/local'])
  })

  test("args: the customer's regions and provider allow/deny lists", () => {
    const p = createPlacement(common, { settings: settings(), targets: targets() })
    expect(names(p.rank({ spec: spec({ regions: ['eu'] }), sources, preferences: {} }))).toEqual(['hetzner/fsn1/cx22', 'aws/eu-west-1/t3.medium'])
    expect(names(p.rank({ spec: spec(), sources, preferences: { providers: ['aws'] } }))).toEqual(['aws/us-east-1/t3.medium', 'aws/eu-west-1/t3.medium'])
    const deny = p.rank({ spec: spec(), sources, preferences: { excludeProviders: ['hetzner', 'own'] } })
    expect(names(deny)).toEqual(['aws/us-east-1/t3.medium', 'aws/eu-west-1/t3.medium'])
    expect(deny.rejected.get('provider excluded by the customer')).toBe(2)
  })

  test('behavior: candidates the tier price cannot pay for at the margin are rejected, counted', () => {
    const p = createPlacement(common, { settings: settings(), targets: targets() })
    const r = p.rank({ spec: spec(), sources, preferences: {}, priceUsd: usd('0.03'), pricedReplicas: 1, minPriceToCost: usd('2') })
    expect(names(r)).toEqual(['hetzner/fsn1/cx22'])
    expect(r.rejected.get('margin too low at the tier price')).toBe(3)
  })

  test('behavior: a failed offer is blocked for the cooldown (offer, region or provider scope), then comes back; auth stays', () => {
    let now = 1_000_000
    const p = createPlacement(common, { settings: settings(), targets: targets(), now: () => now })
    const at = { provider: 'hetzner', target: 'hetzner', region: 'fsn1', instanceType: 'cx22' }
    p.block(at, { kind: 'capacity', scope: 'offer' }, 'resource_unavailable')
    const r = p.rank({ spec: spec(), sources, preferences: {} })
    expect(names(r)[0]).toBe('local/local/local')
    expect([...r.rejected.keys()].some((k) => k.startsWith('blocked after a failed attempt (capacity'))).toBe(true)
    p.block({ ...at, provider: 'aws', target: 'aws', region: 'us-east-1', instanceType: 'x' }, { kind: 'quota', scope: 'region' }, 'quota')
    expect(names(p.rank({ spec: spec(), sources, preferences: {} }))).toEqual(['local/local/local', 'aws/eu-west-1/t3.medium'])
    p.block({ ...at, provider: 'aws' }, { kind: 'auth', scope: 'provider' }, 'auth')
    expect(names(p.rank({ spec: spec(), sources, preferences: {} }))).toEqual(['local/local/local'])
    now += 60_001
    // the cooldowns ended; an auth error keeps its provider out until the config changes
    expect(names(p.rank({ spec: spec(), sources, preferences: {} }))).toEqual(['hetzner/fsn1/cx22', 'local/local/local'])
    expect(p.blocks()).toEqual([expect.objectContaining({ provider: 'aws', kind: 'auth', until: Number.POSITIVE_INFINITY })])
  })

  test('behavior: a target that cannot run the source kind is not a candidate', () => {
    const p = createPlacement(common, { settings: settings(), targets: targets() })
    const r = p.rank({ spec: spec(), sources: [{ kind: 'testing', url: 'https://example.org/x', sha256: 'a'.repeat(64) }], preferences: {} })
    expect(r.candidates).toEqual([])
    expect(r.rejected.get('local runs no testing sources')).toBe(1)
  })
})

describe('failoverOf', () => {
  test('default: reads the class from the error or its causes', () => {
    const e = new ProvisionError('no capacity', { retryable: true, meta: { failover: { kind: 'capacity', scope: 'offer' } } })
    expect(failoverOf(e)).toEqual({ kind: 'capacity', scope: 'offer' })
    expect(failoverOf(new Error('wrapped', { cause: e }))).toEqual({ kind: 'capacity', scope: 'offer' })
    expect(failoverOf(Object.assign(new Error('x'), { failover: { kind: 'auth', scope: 'provider' } }))).toEqual({ kind: 'auth', scope: 'provider' })
  })
  test('behavior: anything else does not fail over', () => {
    expect(failoverOf(new ProvisionError('bad', {}))).toBeUndefined()
    expect(failoverOf(Object.assign(new Error('x'), { failover: { kind: 'weird', scope: 'offer' } }))).toBeUndefined()
  })
})
