/**
 * `blueprint-operator quote --config FILE --explain ...`: the placement decision the daemon would make for a spec,
 * over the operator's targets and the cached catalog — the winner, the next candidates with their prices, and each
 * class of rejected offers with its count.
 */
import { readCacheDir, enrichOffers } from '../pricing/catalog.js'
import { quoteQueryOf, type PricingCliIo } from '../pricing/cli.js'
import { SourceIds } from '../pricing/config.js'
import { createTestCommon } from '../core/common.js'
import type { OperatorConfig } from './config.js'
import { createPlacement, viewOf, type CandidateView } from './placement/placement.js'
import { pricingConfigOf } from './pricing.js'
import { createTargets } from './targets.js'

const line = (rank: string, c: CandidateView) =>
  `${rank.padEnd(7)} ${c.target.padEnd(14)} ${c.region.padEnd(16)} ${c.instanceType.padEnd(22)} ${c.totalHourlyUsd} USD/h${c.spot ? ' (spot)' : ''}  [${c.source}]`

export async function explainQuote(argv: string[], io: PricingCliIo, config: OperatorConfig): Promise<number> {
  const q = quoteQueryOf(argv)
  const pc = pricingConfigOf(config)
  const cache = await readCacheDir(q.catalogDir ?? pc.cacheDir, { sources: SourceIds.filter((id) => pc.sources[id].enabled) })
  for (const p of cache.problems) io.stderr.write(`warning: ${p}\n`)
  const offers = enrichOffers(cache.offers, pc)
  const { common, shutdown } = createTestCommon('silent')
  const targets = await createTargets(common, config, { catalogOffers: () => offers })
  try {
    const placement = createPlacement(common, { settings: { ...config.placement, perTarget: Math.max(q.top, 3) }, targets })
    const sources = [{ kind: 'native' as const, url: 'https://example.invalid/explain', sha256: '0'.repeat(64) }, { kind: 'container' as const, image: 'example.invalid/explain', digest: `sha256:${'0'.repeat(64)}` }]
    const r = placement.rank({ spec: q.spec, sources, preferences: {}, maxCostPerHourUsd: q.maxCostPerHourUsd ?? config.ceilings.maxCostPerHourUsd })
    const views = r.candidates.map(viewOf)
    if (q.json) {
      io.stdout.write(`${JSON.stringify({ mode: config.placement.mode, winner: views[0] ?? null, next: views.slice(1, q.top), rejected: Object.fromEntries(r.rejected), catalogOffers: offers.length, ms: r.ms })}\n`)
      return views.length ? 0 : 1
    }
    io.stdout.write(`placement (mode ${config.placement.mode}) over ${targets.list().length} target(s) and ${offers.length} catalog offer(s), decided in ${r.ms.toFixed(2)} ms\n`)
    if (!views.length) io.stdout.write('no candidate: NO_FEASIBLE_OFFER\n')
    else {
      io.stdout.write(`${line('winner', views[0]!)}\n`)
      views.slice(1, q.top).forEach((v, i) => io.stdout.write(`${line(`#${i + 2}`, v)}\n`))
    }
    if (r.rejected.size) {
      io.stdout.write('rejected:\n')
      for (const [why, n] of [...r.rejected].sort((a, b) => b[1] - a[1])) io.stdout.write(`  ${String(n).padStart(7)}  ${why}\n`)
    }
    return views.length ? 0 : 1
  } finally {
    await targets.close()
    await shutdown()
  }
}
