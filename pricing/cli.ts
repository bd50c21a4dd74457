/**
 * Command line of the pricing module:
 *   pricing parse <format> <file> [--specs FILE] [--feed FILE] [--eur-usd X] [--discount LEVEL]
 *       prints each offer as a JSON line (offerJson.ts), rejected rows on stderr, and last `offers=N rejected=M`.
 *   quote --cpu N --memory GiB [--storage GiB] [--gpu MODEL:COUNT] [--region R]... [--spot] [--max-usd X]
 *         [--top N] [--replicas N] [--ports 22,443] [--provider P]... [--catalog DIR] [--json]
 *       prints the best offers of the cached catalog with their hourly breakdown; ThreeFold offers also in TFT per hour
 *       (the catalog's last TFT/USD rate, plus the configured safety buffer).
 * Exit codes: 0 done, 1 no feasible offer / unreadable input / a failed refresh, 64 usage (one line on stderr).
 */
import { readFile } from 'node:fs/promises'
import { basename, dirname, join, resolve } from 'node:path'
import { CACHE_FORMAT, readCacheFile, writeCacheFile } from './catalog.js'
import { refreshCommand } from './refreshCommand.js'
import { refreshProblem, screen } from './sanity.js'
import { usd, Usd, type Decimal } from '../core/money.js'
import type { ProviderId, Quote } from '../core/offer.js'
import type { ResourceSpec } from '../core/spec.js'
import { defaultPricingConfig, SourceIds, type PricingConfig, type ThreefoldDiscountLevel } from './config.js'
import { PricingUsageError } from './errors.js'
import { offerToJson } from './offerJson.js'
import { quoteFromCache, quoteJson, type TftCost } from './quote.js'
import { azureSpecsFromOffers, parseAzureRetail } from './sources/azureRetail.js'
import { parseDigitalOceanPrices } from './sources/digitalocean.js'
import { parseHetznerList, parseHetznerPlans } from './sources/hetzner.js'
import { parseSkypilotCsv, SkypilotClouds, type SkypilotCloud } from './sources/skypilot.js'
import { discountMultiplier, parseGridNodes } from './sources/threefold.js'
import type { ParseResult } from './sources/types.js'
import { parseVantageInstances } from './sources/vantage.js'
import { parseVultrPlans } from './sources/vultr.js'

export type PricingCliIo = { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream }

export const ParseFormats = [
  ...SkypilotClouds.map((c) => `skypilot-${c}` as const),
  'azure-retail',
  'vantage-aws',
  'vultr-plans',
  'hetzner',
  'digitalocean',
  'threefold-nodes',
] as const

/** Where `quote` looks for the catalog cache without --catalog: $BLUEPRINT_PRICING_CACHE or ./.blueprint-operator/pricing. */
export const defaultCacheDir = () => process.env.BLUEPRINT_PRICING_CACHE ?? join(process.cwd(), '.blueprint-operator', 'pricing')

export const USAGE = `usage:
  pricing refresh [SOURCE...]
      refresh the cache now (every enabled source, or those named); progress on a terminal, plain lines otherwise
  pricing import SOURCE FILE [--specs FILE] [--feed FILE] [--eur-usd X] [--discount LEVEL]
      fill the cache of SOURCE from a saved file (the source's own format, or a cache file): no network needed
  pricing parse <format> <file> [--specs FILE] [--feed FILE] [--eur-usd X] [--discount LEVEL]
      formats: ${ParseFormats.join(', ')}
  quote --cpu N --memory GiB [--storage GiB] [--gpu MODEL:COUNT] [--region R]... [--spot] [--max-usd X]
        [--top N] [--replicas N] [--ports 22,443] [--provider P]... [--catalog DIR] [--json]
`

type Flags = { positional: string[]; values: Map<string, string[]>; bools: Set<string>; raw: string[] }
const BOOLS = new Set(['spot', 'json', 'explain'])

function parseFlags(args: string[]): Flags {
  const f: Flags = { positional: [], values: new Map(), bools: new Set(), raw: args }
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!
    if (!a.startsWith('--')) {
      f.positional.push(a)
      continue
    }
    const eq = a.indexOf('=')
    const name = a.slice(2, eq < 0 ? undefined : eq)
    if (BOOLS.has(name) && eq < 0) {
      f.bools.add(name)
      continue
    }
    const v = eq >= 0 ? a.slice(eq + 1) : args[++i]
    if (v === undefined) throw new PricingUsageError(`--${name} needs a value`)
    f.values.set(name, [...(f.values.get(name) ?? []), v])
  }
  return f
}

const one = (f: Flags, name: string) => f.values.get(name)?.at(-1)
function num(f: Flags, name: string, def?: number): number {
  const v = one(f, name)
  if (v === undefined) {
    if (def === undefined) throw new PricingUsageError(`--${name} is required`)
    return def
  }
  const n = Number(v)
  if (!Number.isFinite(n) || n < 0) throw new PricingUsageError(`--${name}: got ${JSON.stringify(v)}, expected a number >= 0`)
  return n
}

function int(f: Flags, name: string, def: number, min: number): number {
  const n = num(f, name, def)
  if (!Number.isInteger(n) || n < min) throw new PricingUsageError(`--${name}: got ${JSON.stringify(one(f, name))}, expected a whole number >= ${min}`)
  return n
}

async function parseCommand(f: Flags, config: PricingConfig, io: PricingCliIo): Promise<number> {
  const [format, file] = f.positional
  if (!format || !file) throw new PricingUsageError('pricing parse needs <format> <file>')
  const result = await parseFile(format, file, f, config)
  for (const o of result.offers) io.stdout.write(`${JSON.stringify(offerToJson(o))}\n`)
  for (const r of result.rejected) io.stderr.write(`rejected ${r.line !== undefined ? `line ${r.line}` : r.row}: ${r.why}\n`)
  io.stdout.write(`offers=${result.offers.length} rejected=${result.rejected.length}\n`)
  return 0
}

/** The source a parse format fills (and back). */
const formatOfSource = (source: string) => (source === 'threefold' ? 'threefold-nodes' : source)

/**
 * `pricing import SOURCE FILE`: fill the cache of SOURCE from a file (what the source's site serves, saved by hand,
 * or a cache file of another machine), screened like a refresh: no network needed.
 */
async function importCommand(f: Flags, config: PricingConfig, io: PricingCliIo): Promise<number> {
  const [source, file] = f.positional
  if (!source || !file) throw new PricingUsageError('pricing import needs <source> <file>')
  if (!(SourceIds as readonly string[]).includes(source)) throw new PricingUsageError(`unknown source ${JSON.stringify(source)}; one of ${SourceIds.join(', ')}`)
  const text = await readFile(file, 'utf8')
  let parsed: ParseResult
  let fetchedAt = Date.now()
  if (text.includes(`"format":"${CACHE_FORMAT}"`) || text.includes(`"format": "${CACHE_FORMAT}"`)) {
    const dir = dirname(resolve(file))
    const c = await readCacheFile(dir, basename(file, '.json')).catch((err: Error) => {
      throw new PricingUsageError(`${file}: not a cache file of ${source} (${err.message})`)
    })
    if (basename(file, '.json') !== source) throw new PricingUsageError(`${file} is the cache of ${basename(file, '.json')}, not of ${source}`)
    parsed = { offers: c.offers, rejected: [] }
    fetchedAt = c.fetchedAt
  } else parsed = await parseFile(formatOfSource(source), file, f, config)
  const screened = screen(parsed, config.sanity)
  const problem = refreshProblem(0, screened.offers.length, config.sanity)
  if (problem) {
    io.stderr.write(`${source}: not imported: ${problem}${screened.rejected.length ? ` (${screened.rejected.length} rows rejected, e.g. ${screened.rejected[0]!.why})` : ''}\n`)
    return 1
  }
  await writeCacheFile(config.cacheDir, source, fetchedAt, screened.offers)
  io.stdout.write(`${source}: imported ${screened.offers.length} offers (${screened.rejected.length} rows rejected) into ${join(config.cacheDir, `${source}.json`)}, dated ${new Date(fetchedAt).toISOString()}\n`)
  return 0
}

/** Parse `file` in `format` with the flags of `pricing parse`. */
async function parseFile(format: string, file: string, f: Flags, config: PricingConfig): Promise<ParseResult> {
  if (!(ParseFormats as readonly string[]).includes(format)) throw new PricingUsageError(`unknown format ${JSON.stringify(format)}; one of ${ParseFormats.join(', ')}`)
  const text = await readFile(file, 'utf8')
  const fetchedAt = Date.now()
  const limits = config.sanity
  const eurUsd = one(f, 'eur-usd') ?? config.eurUsd
  let result: ParseResult
  if (format.startsWith('skypilot-')) result = parseSkypilotCsv(text, { cloud: format.slice(9) as SkypilotCloud, fetchedAt, limits })
  else if (format === 'azure-retail') {
    const specsFile = one(f, 'specs')
    const specs = specsFile ? azureSpecsFromOffers(parseSkypilotCsv(await readFile(specsFile, 'utf8'), { cloud: 'azure', fetchedAt, limits }).offers) : undefined
    result = parseAzureRetail(text, { fetchedAt, limits, specs })
  } else if (format === 'vantage-aws') result = parseVantageInstances(text, { fetchedAt, limits })
  else if (format === 'vultr-plans') result = parseVultrPlans(text, { fetchedAt, limits })
  else if (format === 'hetzner') {
    const feed = one(f, 'feed')
    const trimmed = text.trimStart()
    if (trimmed.startsWith('{') && /"instances"\s*:/.test(text)) result = parseHetznerList(text, { fetchedAt, limits, eurUsd })
    else if (!feed) throw new PricingUsageError('hetzner plan pages need the price feed: --feed live_data_prices.json')
    else result = parseHetznerPlans([text], await readFile(feed, 'utf8'), { fetchedAt, limits, eurUsd, ipv4ProductKey: config.sources.hetzner.ipv4ProductKey })
  } else if (format === 'digitalocean') {
    const c = config.sources.digitalocean
    result = parseDigitalOceanPrices([text], { fetchedAt, limits, regions: c.regions, gpuRegions: c.gpuRegions })
  } else {
    const discount = (one(f, 'discount') ?? config.threefold.discount) as ThreefoldDiscountLevel
    if (!(discount in discountMultiplier)) throw new PricingUsageError(`--discount: one of ${Object.keys(discountMultiplier).join(', ')}`)
    result = parseGridNodes(text, { fetchedAt, limits, policy: config.threefold.policy, discount })
  }
  return result
}

const fmt = (d: { toDecimalPlaces(n: number): { toFixed(n: number): string } }, n = 6) => d.toDecimalPlaces(n).toFixed(n)

function tftText(t: TftCost): string {
  if ('unavailable' in t) return `   TFT/h unknown: ${t.unavailable}`
  const pct = new Usd(t.buffer).mul(100).toString()
  return `   ${t.perHour} TFT/h incl. ${pct} % buffer, at ${t.usdPerTft} USD/TFT (${t.sources.join(', ')}; resolved ${new Date(t.resolvedAt).toISOString()})`
}

function quoteLine(rank: number, q: Quote, tft: TftCost | undefined): string {
  const o = q.offer
  const b = q.breakdown
  const gpu = o.gpu.count ? `, ${o.gpu.count}×${o.gpu.model ?? 'GPU'}` : ''
  return [
    `#${rank} ${o.provider} ${o.region}${o.zone ? ` (${o.zone})` : ''} ${o.instanceType}: ${o.vcpu} vCPU, ${o.memoryGiB} GiB${gpu}, ${q.spot ? 'spot' : 'on-demand'}`,
    `   ${fmt(b.totalUsd)} USD/h for ${q.replicas} replica(s) = ${fmt(b.perReplicaUsd)} each: host ${fmt(b.hostUsd)} + GPU ${fmt(b.gpuUsd)} + storage ${fmt(b.storageUsd)} + IPv4 ${fmt(b.ipv4Usd)}`,
    ...(tft ? [tftText(tft)] : []),
    `   source ${o.source}, fetched ${new Date(o.fetchedAt).toISOString()}`,
  ].join('\n')
}

export type QuoteQuery = { spec: ResourceSpec; maxCostPerHourUsd: Decimal | undefined; providers: ProviderId[] | undefined; top: number; catalogDir: string | undefined; json: boolean }

/** The spec and options of `quote` flags (`--cpu N --memory GiB ...`); a malformed flag is a PricingUsageError. */
export function quoteQueryOf(args: string[]): QuoteQuery {
  const f = parseFlags(args)
  const gpuFlag = one(f, 'gpu')
  let gpu: ResourceSpec['gpu'] = { count: 0 }
  if (gpuFlag) {
    // MODEL, COUNT or MODEL:COUNT; anything else would silently mean "any GPU"
    const m = /^([^:]*?)(?::(\d+))?$/.exec(gpuFlag)
    if (!m || (m[1] === '' && m[2] !== undefined))
      throw new PricingUsageError(`--gpu: got ${JSON.stringify(gpuFlag)}, expected MODEL, COUNT or MODEL:COUNT (e.g. H100:2)`)
    const count = m[2] !== undefined ? Number(m[2]) : /^\d+$/.test(gpuFlag) ? Number(gpuFlag) : 1
    const model = m[1] && !/^\d+$/.test(m[1]) ? m[1] : undefined
    gpu = { count, model }
  }
  const replicas = int(f, 'replicas', 1, 0)
  const ports = (one(f, 'ports') ?? '')
    .split(',')
    .filter(Boolean)
    .map((p) => {
      const n = Number(p)
      if (!Number.isInteger(n) || n < 1 || n > 65535) throw new PricingUsageError(`--ports: ${p} is not a port`)
      return n
    })
  const spec: ResourceSpec = {
    vcpu: num(f, 'cpu'),
    memoryGiB: num(f, 'memory'),
    storageGiB: num(f, 'storage', 0),
    gpu,
    replicas,
    minReplicas: replicas,
    maxReplicas: replicas,
    regions: f.values.get('region') ?? [],
    spotAllowed: f.bools.has('spot'),
    highAvailability: false,
    ports,
    tier: 'basic',
  }
  const maxUsd = one(f, 'max-usd')
  let maxCostPerHourUsd
  try {
    maxCostPerHourUsd = maxUsd !== undefined ? usd(maxUsd) : undefined
  } catch {
    throw new PricingUsageError(`--max-usd: got ${JSON.stringify(maxUsd)}, expected a decimal amount`)
  }
  return { spec, maxCostPerHourUsd, providers: f.values.get('provider') as ProviderId[] | undefined, top: int(f, 'top', 3, 1), catalogDir: one(f, 'catalog'), json: f.bools.has('json') }
}

async function quoteCommand(f: Flags, config: PricingConfig, io: PricingCliIo): Promise<number> {
  const { spec, maxCostPerHourUsd } = quoteQueryOf(f.raw)
  const res = await quoteFromCache(spec, config, {
    ...(one(f, 'catalog') && { cacheDir: one(f, 'catalog')! }),
    providers: f.values.get('provider') as ProviderId[] | undefined,
    maxCostPerHourUsd,
    top: int(f, 'top', 3, 1),
  })
  for (const p of res.problems) io.stderr.write(`warning: ${p}\n`)
  if (!res.offers) {
    io.stderr.write(`no offers: the catalog at ${res.cacheDir} is empty and no own machines are configured\n`)
    return 1
  }
  if (!res.ok) {
    io.stderr.write(`NO_FEASIBLE_OFFER among ${res.offers} offers; nearest:\n`)
    for (const n of res.nearest) io.stderr.write(`  ${n.offer.provider} ${n.offer.region} ${n.offer.instanceType}: ${n.why.join('; ')}\n`)
    return 1
  }
  for (const n of res.notes) io.stderr.write(`note: ${n}\n`)
  if (f.bools.has('json')) res.quotes.forEach((q) => io.stdout.write(`${JSON.stringify(quoteJson(q.quote, q.tft))}\n`))
  else res.quotes.forEach((q, i) => io.stdout.write(`${quoteLine(i + 1, q.quote, q.tft)}\n`))
  return 0
}

/** Run `pricing parse ...` or `quote ...` with an explicit configuration (own inventory, cache dir, limits). */
export async function pricingCliWith(argv: string[], io: PricingCliIo, config: PricingConfig): Promise<number> {
  try {
    const [cmd, sub, ...rest] = argv
    if (cmd === 'pricing' && sub === 'parse') return await parseCommand(parseFlags(rest), config, io)
    if (cmd === 'pricing' && sub === 'import') return await importCommand(parseFlags(rest), config, io)
    if (cmd === 'pricing' && sub === 'refresh') return await refreshCommand(parseFlags(rest).positional, config, io)
    if (cmd === 'quote') return await quoteCommand(parseFlags(argv.slice(1)), config, io)
    throw new PricingUsageError(sub ? `unknown command: pricing ${sub}` : 'pricing needs a command: parse, import or refresh')
  } catch (err) {
    if (err instanceof PricingUsageError) {
      // one line: what was wrong; the full usage only on request (help)
      io.stderr.write(`error: ${err.shortMessage} (blueprint-operator help)\n`)
      return 64
    }
    io.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`)
    return 1
  }
}

/** `blueprint-operator pricing parse ...` / `blueprint-operator quote ...` (argv without the program name); returns the exit code. */
export function pricingCli(argv: string[], io: PricingCliIo): Promise<number> {
  return pricingCliWith(argv, io, defaultPricingConfig(defaultCacheDir()))
}
