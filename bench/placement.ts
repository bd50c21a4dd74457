/**
 * Placement benchmark (printed figures): one decision — rank every candidate of the operator's own targets and an
 * enabled AWS target selling from a ≥ 200,000-offer catalog, with rejected classes counted — p50/p99.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { createTestCommon } from '../core/common.js'
import { usd } from '../core/money.js'
import type { ResourceSpec } from '../core/spec.js'
import { createPlacement } from '../daemon/placement/placement.js'
import type { TargetRegistry } from '../daemon/ports.js'
import { cloudTarget, ownTarget } from '../daemon/providers.js'
import { enrichOffers } from '../pricing/catalog.js'
import { defaultPricingConfig } from '../pricing/config.js'
import { parseSkypilotCsv } from '../pricing/sources/skypilot.js'
import type { Provisioner } from '../provisioners/types.js'
import { buildCsv } from './awsCatalog.js'

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!

const tmp = mkdtempSync(join(tmpdir(), 'placement-bench-'))
try {
  const big = buildCsv(15_000_000)
  const offers = enrichOffers(parseSkypilotCsv(big.text, { cloud: 'aws', fetchedAt: Date.now() }).offers, defaultPricingConfig(tmp))
  const { common } = createTestCommon('silent')
  const prov = { id: 'x', sourceKinds: ['native', 'container'] } as unknown as Provisioner
  const list = [
    ownTarget({ name: 'local', provisioner: prov, region: 'local', vcpu: 8, memoryGiB: 32, storageGiB: 200, hourlyUsd: usd('0.2') }),
    ...['rack-1', 'rack-2', 'rack-3'].map((h, i) => ownTarget({ name: `ssh:${h}`, provisioner: prov, placement: h, region: 'own', vcpu: 16, memoryGiB: 64, storageGiB: 500, hourlyUsd: usd(`0.${3 + i}`) })),
    cloudTarget({ name: 'aws', provider: 'aws', provisioner: prov, regions: [], catalogOffers: () => offers }),
  ]
  const targets: TargetRegistry = { list: () => list, byName: (n) => list.find((t) => t.name === n), provisioners: () => [], close: async () => {} }
  const placement = createPlacement(common, { settings: { mode: 'cheapest', providers: [], maxAttempts: 5, cooldownMs: 600_000, confirmPriceOlderThanMs: 1e12, perTarget: 8 }, targets })
  const base: ResourceSpec = { vcpu: 4, memoryGiB: 16, storageGiB: 20, gpu: { count: 0 }, replicas: 1, minReplicas: 1, maxReplicas: 1, regions: [], spotAllowed: false, highAvailability: false, ports: [8080], tier: 'basic' }
  const specs: ResourceSpec[] = [base, { ...base, regions: ['eu-'] }, { ...base, vcpu: 2, memoryGiB: 4, spotAllowed: true }, { ...base, vcpu: 16, memoryGiB: 64, replicas: 3 }, { ...base, vcpu: 1, memoryGiB: 1, regions: ['asia'] }]
  const sources = [{ kind: 'native' as const, url: 'https://example.org/a', sha256: '0'.repeat(64) }]
  for (const spec of specs) placement.rank({ spec, sources, preferences: {} }) // first call indexes the catalog once
  const times: number[] = []
  let winner = ''
  for (let i = 0; i < 200; i++) {
    const spec = specs[i % specs.length]!
    const t0 = performance.now()
    const r = placement.rank({ spec, sources, preferences: {}, priceUsd: usd('5'), pricedReplicas: spec.replicas, minPriceToCost: usd('1.2'), maxCostPerHourUsd: usd('10') })
    times.push(performance.now() - t0)
    if (i === 0) winner = `${r.candidates[0]?.target.name} ${r.candidates[0]?.offer.region} ${r.candidates[0]?.offer.instanceType} ${r.candidates[0]?.totalUsd.toFixed()} USD/h; ${r.candidates.length} candidates, ${[...r.rejected.values()].reduce((a, b) => a + b, 0)} rejected offers in ${r.rejected.size} classes`
  }
  console.log(`placement decision over ${offers.length} catalog offers + ${list.length - 1} own targets, ${times.length} decisions of ${specs.length} shapes: p50 ${pct(times, 0.5).toFixed(2)} ms, p99 ${pct(times, 0.99).toFixed(2)} ms`)
  console.log(`first decision: ${winner}`)
} finally {
  rmSync(tmp, { recursive: true, force: true })
}
