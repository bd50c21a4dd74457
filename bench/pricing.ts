/**
 * Pricing benchmarks (printed figures, no assertions): `npx tsx bench/pricing.ts`
 *   1. parse a ~3 MB SkyPilot AWS catalog (built by repeating the recorded rows)        — target ≤ 300 ms
 *   2. `cheapest` over ≥ 200,000 offers, p50/p99                                          — target ≤ 5 ms p50
 *   3. the same query by a pandas filter over the same CSV (Debian python3-pandas), ratio — target ≥ 20×
 * The synthetic rows keep the recorded specs, regions and zones; each repetition gets its own instance-type suffix and
 * a slightly different price so that the catalog has realistic (few) ties.
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import type { ResourceSpec } from '../core/spec.js'
import { enrichOffers } from '../pricing/catalog.js'
import { defaultPricingConfig } from '../pricing/config.js'
import { cheapest, prepareOffers } from '../pricing/select.js'
import { parseSkypilotCsv } from '../pricing/sources/skypilot.js'
import { buildCsv } from './awsCatalog.js'

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!
const ms = (n: number) => `${n.toFixed(n < 10 ? 3 : 1)} ms`

function main() {
  const tmp = mkdtempSync(join(tmpdir(), 'pricing-bench-'))
  try {
    console.log(`pricing benchmarks — node ${process.version}, ${new Date().toISOString()}`)

    // 1. parse ~3 MB
    const small = buildCsv(3_113_907)
    for (let i = 0; i < 2; i++) parseSkypilotCsv(small.text, { cloud: 'aws', fetchedAt: 0 })
    const parseTimes: number[] = []
    let parsed = 0
    for (let i = 0; i < 7; i++) {
      const t = performance.now()
      parsed = parseSkypilotCsv(small.text, { cloud: 'aws', fetchedAt: 0 }).offers.length
      parseTimes.push(performance.now() - t)
    }
    console.log(`parse SkyPilot AWS vms.csv: ${(small.text.length / 1e6).toFixed(2)} MB, ${small.rows} rows → ${parsed} offers: p50 ${ms(pct(parseTimes, 0.5))}, min ${ms(Math.min(...parseTimes))} (target ≤ 300 ms)`)

    // 2. cheapest over ≥ 200k offers
    const big = buildCsv(15_000_000)
    const csvPath = join(tmp, 'vms.csv')
    writeFileSync(csvPath, big.text)
    let t = performance.now()
    // storage and IPv4 list prices filled in as the catalog does
    const offers = enrichOffers(parseSkypilotCsv(big.text, { cloud: 'aws', fetchedAt: 0 }).offers, defaultPricingConfig(tmp))
    const parseBig = performance.now() - t
    t = performance.now()
    prepareOffers(offers)
    const indexMs = performance.now() - t
    console.log(`catalog: ${offers.length} offers (${(big.text.length / 1e6).toFixed(1)} MB CSV parsed in ${ms(parseBig)}; one-time index ${ms(indexMs)})`)
    const base: ResourceSpec = {
      vcpu: 4, memoryGiB: 16, storageGiB: 0, gpu: { count: 0 }, replicas: 1, minReplicas: 1, maxReplicas: 1,
      regions: [], spotAllowed: false, highAvailability: false, ports: [], tier: 'basic',
    }
    const specs: ResourceSpec[] = [
      base,
      { ...base, regions: ['eu-'] },
      { ...base, vcpu: 2, memoryGiB: 4, spotAllowed: true },
      { ...base, vcpu: 16, memoryGiB: 64, regions: ['us'], storageGiB: 100, ports: [443], replicas: 3 },
      { ...base, vcpu: 8, memoryGiB: 32, regions: ['ap-southeast-2', 'eu-central-1'] },
      { ...base, vcpu: 1, memoryGiB: 1, regions: ['asia'] },
    ]
    for (const s of specs) cheapest(s, offers, {})
    const times: number[] = []
    for (let i = 0; i < 300; i++) {
      const s = specs[i % specs.length]!
      const t0 = performance.now()
      const r = cheapest(s, offers, { top: 3 })
      times.push(performance.now() - t0)
      if (!r.ok) throw new Error('bench query found nothing')
    }
    console.log(`cheapest over ${offers.length} offers, ${times.length} queries of ${specs.length} shapes: p50 ${ms(pct(times, 0.5))}, p99 ${ms(pct(times, 0.99))} (target ≤ 5 ms p50)`)

    // 3. the pandas comparison: 4 vCPU / 16 GiB in eu-*, on-demand
    const q = { ...base, regions: ['eu-'] }
    const ours: number[] = []
    let answer = ''
    for (let i = 0; i < 100; i++) {
      const t0 = performance.now()
      const r = cheapest(q, offers, { top: 1 })
      ours.push(performance.now() - t0)
      if (r.ok) answer = `${r.quote.offer.instanceType} ${r.quote.offer.zone} ${r.quote.offer.hourlyUsd.toString()}`
    }
    const pythons = ['python3', '/usr/bin/python3']
    let pandas: { rows: number; load_ms: number; p50_ms: number; p99_ms: number; best: { InstanceType: string; AvailabilityZone: string; Price: number } } | undefined
    let why = ''
    for (const py of pythons) {
      try {
        const out = execFileSync(py, [join(import.meta.dirname, 'pricing_pandas.py'), csvPath, '30', '4', '16', 'eu-'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 })
        pandas = JSON.parse(out.trim().split('\n').at(-1)!)
        break
      } catch (err) {
        why = (err as { stderr?: string }).stderr?.split('\n').filter(Boolean).at(-1) ?? (err as Error).message
      }
    }
    const oursP50 = pct(ours, 0.5)
    console.log(`same query (4 vCPU, 16 GiB, eu-*): cheapest p50 ${ms(oursP50)} → ${answer}`)
    if (pandas) {
      console.log(`pandas ${pandas.rows} rows (read_csv ${ms(pandas.load_ms)}): filter + idxmin p50 ${ms(pandas.p50_ms)}, p99 ${ms(pandas.p99_ms)} → ${pandas.best.InstanceType} ${pandas.best.AvailabilityZone} ${pandas.best.Price}`)
      console.log(`ratio pandas / cheapest (p50): ${(pandas.p50_ms / oursP50).toFixed(1)}× (target ≥ 20×)`)
    } else console.log(`pandas comparison skipped: no python3 with pandas (${why}); install Debian python3-pandas`)
  } finally {
    rmSync(tmp, { recursive: true, force: true })
  }
}

main()
