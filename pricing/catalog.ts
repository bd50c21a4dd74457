/**
 * The price catalog: one disk cache per source, scheduled refreshes (node-cron, each source its own expression),
 * sanity checks, and last-known-good semantics — a source that is down or returns garbage keeps serving its previous
 * offers and shows its age and last error; it never stops the other sources or the daemon.
 *
 * Cache layout: `<cacheDir>/<source>.json`, written atomically and durably (synced temp file + rename + synced directory):
 *   { "format": "blueprint-operator/pricing-cache", "version": 1, "source": "skypilot-aws",
 *     "fetchedAt": <ms since epoch>, "offers": [ <OfferJson>, ... ], "notes"?: [ "..." ], "facts"?: { policy?, tftUsd? } }
 * where OfferJson is the flat form of `pricing parse` (offerJson.ts), as the source gave it: the configured storage and
 * IPv4 list prices are filled in on load from the configuration of the day; notes are the fallbacks the refresh took
 * and facts what it learned besides its offers (ThreeFold: the pricing policy used, the TFT/USD rate). Only enabled
 * sources are loaded and served; a disabled source's file stays on disk unused. The operator's own machines are never
 * cached: they come from the configuration each time.
 */
import { randomBytes } from 'node:crypto'
import { mkdir, open, readFile, readdir, rename, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { createTask, validate, type ScheduledTask } from 'node-cron'
import type { Common } from '../core/common.js'
import { BaseError } from '../core/errors.js'
import { usd } from '../core/money.js'
import type { Offer } from '../core/offer.js'
import { SourceIds, type NetworkSourceId, type PricingConfig, type SourceId } from './config.js'
import { PriceRefreshRejectedError } from './errors.js'
import { offerFromJson, offerToJson, type OfferJson } from './offerJson.js'
import { refreshProblem, screen } from './sanity.js'
import { sourceLoaders, type SourceLoader } from './sources/index.js'
import { ownOffers } from './sources/own.js'
import type { PolicyInUse, SourceFacts, TftUsdInUse } from './sources/types.js'

export const CACHE_FORMAT = 'blueprint-operator/pricing-cache'

export type SourceHealth = {
  source: SourceId
  /** Offers served now (last-known-good). */
  offers: number
  /** When the served offers were fetched, ms since epoch; undefined when the source never loaded. */
  fetchedAt: number | undefined
  ageMs: number | undefined
  /** Message of the last failed or rejected refresh; cleared by a successful one. */
  lastError?: string
  lastAttemptAt?: number
  /** Rows the last accepted refresh rejected (placeholders, duplicates, ...). */
  rejectedRows?: number
  /** Fallbacks the served offers' refresh took (e.g. the configured ThreeFold policy instead of the chain's). */
  notes?: string[]
  /** ThreeFold: the pricing policy the served offers are priced with. */
  policy?: PolicyInUse
  /** ThreeFold: the last TFT/USD rate resolved, and its age. */
  tftUsd?: TftUsdInUse & { ageMs: number }
  /** When a failed refresh is tried again (before the next scheduled one), ms since epoch. */
  nextRetryAt?: number
}

export type RefreshOutcome = { source: SourceId; ok: boolean; offers: number; error?: string }

export type Catalog = {
  /** Load the disk cache, schedule refreshes, and refresh in the background sources that are missing or stale. */
  start(): Promise<void>
  /** Refresh one source or every enabled one (a disabled one is refused); never throws for a failing source (see the outcome). */
  refresh(source?: SourceId, o?: { signal?: AbortSignal }): Promise<RefreshOutcome[]>
  /** Every offer served now. The same array is returned until something changes (select caches its index on it). */
  offers(): readonly Offer[]
  health(): SourceHealth[]
  /** Stop the schedules and pending retries, and abort refreshes in flight. */
  close(): Promise<void>
}

export type CatalogDeps = {
  /** Replace loaders (tests, or a source fed by another module). */
  loaders?: Partial<Record<NetworkSourceId, SourceLoader>>
  now?: () => number
  /** Refresh missing/stale sources from start(). Default true. */
  refreshOnStart?: boolean
  /** Retries after a failed refresh: first delay (default 60 s), doubling up to maxDelayMs (default 1 h) or the source's interval. */
  retry?: { firstDelayMs?: number; maxDelayMs?: number }
}

type State = {
  offers: Offer[]
  fetchedAt: number | undefined
  lastError?: string
  lastAttemptAt?: number
  rejectedRows?: number
  notes?: string[]
  facts?: SourceFacts
  inflight?: Promise<RefreshOutcome>
  /** Failed refreshes in a row. */
  failures: number
  retryTimer?: NodeJS.Timeout
  nextRetryAt?: number
}

export class PricingConfigError extends BaseError {
  override name = 'PricingConfigError'
  constructor(problems: string[]) {
    super('invalid pricing configuration', { code: 'PRICING_CONFIG', details: problems })
  }
}

/** Fill storage and IPv4 list prices from the configuration where the source had none. */
export function enrichOffers(offers: Offer[], config: PricingConfig): Offer[] {
  const storage = new Map(Object.entries(config.storageUsdPerGiBMonth).map(([k, v]) => [k, usd(v!)]))
  const ipv4 = new Map(Object.entries(config.ipv4HourlyUsd).map(([k, v]) => [k, usd(v!)]))
  for (const o of offers) {
    if (!o.storageUsdPerGiBMonth) o.storageUsdPerGiBMonth = storage.get(o.provider)
    if (!o.ipv4HourlyUsd) o.ipv4HourlyUsd = ipv4.get(o.provider)
  }
  return offers
}

export type CacheFile = { fetchedAt: number; offers: Offer[]; notes?: string[]; facts?: SourceFacts }

const isDecimal = (x: unknown) => typeof x === 'string' && /^\d+(\.\d+)?$/.test(x)

/** The facts of a cache file that have the expected shape (a hand-edited or older file loses only what is malformed). */
function factsFromJson(x: unknown): SourceFacts | undefined {
  if (typeof x !== 'object' || x === null) return undefined
  const { policy, tftUsd } = x as SourceFacts
  const facts: SourceFacts = {}
  if (policy && ['id', 'cu', 'su', 'nu', 'ipu', 'discountForDedicationNodes'].every((k) => typeof (policy as Record<string, unknown>)[k] === 'number')) facts.policy = policy
  if (tftUsd && isDecimal(tftUsd.usdPerTft) && typeof tftUsd.resolvedAt === 'number' && Array.isArray(tftUsd.used) && Array.isArray(tftUsd.discarded)) facts.tftUsd = tftUsd
  return facts.policy || facts.tftUsd ? facts : undefined
}

/** Read one cache file; throws on anything that is not a cache of `source`. */
export async function readCacheFile(cacheDir: string, source: string): Promise<CacheFile> {
  const data = JSON.parse(await readFile(join(cacheDir, `${source}.json`), 'utf8')) as {
    format?: string
    version?: number
    source?: string
    fetchedAt?: number
    offers?: OfferJson[]
    notes?: unknown
    facts?: unknown
  }
  if (data.format !== CACHE_FORMAT || data.version !== 1 || data.source !== source || !Array.isArray(data.offers) || typeof data.fetchedAt !== 'number')
    throw new TypeError(`${source}.json is not a pricing cache file of ${source}`)
  const file: CacheFile = { fetchedAt: data.fetchedAt, offers: data.offers.map(offerFromJson) }
  if (Array.isArray(data.notes) && data.notes.length && data.notes.every((n) => typeof n === 'string')) file.notes = data.notes as string[]
  const facts = factsFromJson(data.facts)
  if (facts) file.facts = facts
  return file
}

export type CachedSource = { source: string; offers: number; fetchedAt: number; notes?: string[]; facts?: SourceFacts }

/**
 * Every cached source in `cacheDir` (for `quote --catalog DIR`), or only those named in `o.sources` (the others are
 * reported in `problems`). Unreadable files are reported, not thrown.
 */
export async function readCacheDir(
  cacheDir: string,
  o: { sources?: readonly string[] } = {},
): Promise<{ offers: Offer[]; problems: string[]; sources: CachedSource[] }> {
  const offers: Offer[] = []
  const problems: string[] = []
  const sources: CachedSource[] = []
  let names: string[] = []
  try {
    names = (await readdir(cacheDir)).filter((n) => n.endsWith('.json')).sort()
  } catch (err) {
    problems.push(`cannot read ${cacheDir}: ${(err as Error).message}`)
  }
  for (const name of names) {
    const source = name.slice(0, -5)
    if (o.sources && !o.sources.includes(source)) {
      problems.push(`${name}: source ${source} is disabled in the configuration; not used`)
      continue
    }
    try {
      const c = await readCacheFile(cacheDir, source)
      offers.push(...c.offers)
      sources.push({ source, offers: c.offers.length, fetchedAt: c.fetchedAt, ...(c.notes && { notes: c.notes }), ...(c.facts && { facts: c.facts }) })
    } catch (err) {
      problems.push(`${name}: ${(err as Error).message}`)
    }
  }
  return { offers, problems, sources }
}

/** Write one cache file atomically and durably (synced temp file with a unique name, rename, synced directory). */
export async function writeCacheFile(
  cacheDir: string,
  source: string,
  fetchedAt: number,
  offers: readonly Offer[],
  extra: { notes?: string[]; facts?: SourceFacts } = {},
): Promise<void> {
  await mkdir(cacheDir, { recursive: true })
  const file = join(cacheDir, `${source}.json`)
  // unique per write: two writes of one source in one process must not share (and truncate) a temp file
  const tmp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`
  const body = {
    format: CACHE_FORMAT,
    version: 1,
    source,
    fetchedAt,
    offers: offers.map(offerToJson),
    ...(extra.notes?.length && { notes: extra.notes }),
    ...(extra.facts && { facts: extra.facts }),
  }
  try {
    const fh = await open(tmp, 'w')
    try {
      await fh.writeFile(JSON.stringify(body))
      // the data must be on disk before the rename makes it the cache, or a crash can leave an empty file
      await fh.sync()
    } finally {
      await fh.close()
    }
    await rename(tmp, file)
  } catch (err) {
    await unlink(tmp).catch(() => undefined)
    throw err
  }
  // the rename itself is durable once the directory is synced; not every platform can open a directory for that
  const dh = await open(cacheDir, 'r').catch(() => undefined)
  if (dh) await dh.sync().catch(() => undefined).finally(() => dh.close())
}

/** Create the catalog. Throws PricingConfigError at once on invalid refresh expressions. */
export function createCatalog(common: Common, config: PricingConfig, deps: CatalogDeps = {}): Catalog {
  const log = common.logger.child({ module: 'pricing' })
  const now = deps.now ?? Date.now
  const loaders = { ...sourceLoaders, ...deps.loaders }
  const problems: string[] = []
  for (const id of SourceIds) {
    const c = config.sources[id]
    if (c.enabled && !validate(c.refresh)) problems.push(`pricing.sources.${id}.refresh: got ${JSON.stringify(c.refresh)}, expected a cron expression such as "5 3 * * *"`)
  }
  const ownResult = ownOffers(config.own, { fetchedAt: now(), limits: config.sanity })
  for (const r of ownResult.rejected) problems.push(`pricing.own: ${r.row}: ${r.why}`)
  if (problems.length) throw new PricingConfigError(problems)

  const enabled = SourceIds.filter((id) => config.sources[id].enabled)
  const states = new Map<NetworkSourceId, State>(SourceIds.map((id) => [id, { offers: [], fetchedAt: undefined, failures: 0 }]))
  const own: State = { offers: ownResult.offers, fetchedAt: now(), failures: 0 }
  const gOffers = common.metrics.gauge('pricing_source_offers', 'Offers served per price source')
  const cRefresh = common.metrics.counter('pricing_refresh_total', 'Refreshes per price source and result (ok, rejected, failed)')
  const gAge = common.metrics.gauge('pricing_source_age_seconds', 'Age of the offers served per price source')
  const closer = new AbortController()
  const tasks: ScheduledTask[] = []
  /** Each scheduled source's interval between cron slots, ms (caps its retry delay). */
  const intervals = new Map<NetworkSourceId, number>()
  const retryFirstMs = deps.retry?.firstDelayMs ?? 60_000
  const retryMaxMs = deps.retry?.maxDelayMs ?? 3_600_000
  let combined: Offer[] | undefined
  let closed = false

  // fill-ins go on copies: the cache keeps what the source said, so a changed price in the configuration applies on restart
  const setOffers = (id: NetworkSourceId, st: State, offers: readonly Offer[], fetchedAt: number) => {
    st.offers = enrichOffers(offers.map((o) => ({ ...o })), config)
    st.fetchedAt = fetchedAt
    combined = undefined
    gOffers.set(st.offers.length, { source: id })
  }

  const clearRetry = (st: State) => {
    clearTimeout(st.retryTimer)
    st.retryTimer = undefined
    st.nextRetryAt = undefined
  }

  // without this a source that failed at start (network down) stays empty until its next cron slot, a day or a week away
  const scheduleRetry = (id: NetworkSourceId, st: State): number | undefined => {
    clearRetry(st)
    if (closed || common.signal.aborted) return undefined
    const cap = Math.min(retryMaxMs, intervals.get(id) ?? retryMaxMs)
    const delay = Math.min(cap, retryFirstMs * 2 ** Math.min(st.failures, 30))
    st.failures++
    st.nextRetryAt = now() + delay
    st.retryTimer = setTimeout(() => {
      st.retryTimer = undefined
      st.nextRetryAt = undefined
      void refreshOne(id)
    }, delay)
    st.retryTimer.unref?.()
    return delay
  }

  const refreshOne = (id: NetworkSourceId, signal?: AbortSignal): Promise<RefreshOutcome> => {
    const st = states.get(id)!
    if (st.inflight) return st.inflight
    const run = async (): Promise<RefreshOutcome> => {
      const fetchedAt = now()
      st.lastAttemptAt = fetchedAt
      const sig = AbortSignal.any([closer.signal, common.signal, ...(signal ? [signal] : [])])
      try {
        const loaded = await loaders[id]({
          config,
          signal: sig,
          fetchedAt,
          current: (other) => (other === 'own-inventory' ? own.offers : (states.get(other as NetworkSourceId)?.offers ?? [])),
        })
        const result = screen(loaded, config.sanity)
        const problem = refreshProblem(st.offers.length, result.offers.length, config.sanity)
        if (problem) throw new PriceRefreshRejectedError(id, `${problem}${result.rejected.length ? `; ${result.rejected.length} rows rejected, e.g. ${result.rejected[0]!.why}` : ''}`)
        setOffers(id, st, result.offers, fetchedAt)
        st.rejectedRows = result.rejected.length
        st.lastError = undefined
        st.failures = 0
        clearRetry(st)
        st.notes = loaded.notes?.length ? loaded.notes : undefined
        // facts this refresh could not learn (a rate that did not resolve) stay as last known, with their age
        if (loaded.facts) st.facts = { ...st.facts, ...loaded.facts }
        for (const note of st.notes ?? []) log.warn({ source: id, note }, 'price source refreshed with a fallback')
        try {
          await writeCacheFile(config.cacheDir, id, fetchedAt, result.offers, st)
        } catch (err) {
          log.warn({ err, source: id }, 'writing the price cache failed; serving from memory')
        }
        cRefresh.inc({ source: id, result: 'ok' })
        log.info({ source: id, offers: st.offers.length, rejected: result.rejected.length }, 'price source refreshed')
        return { source: id, ok: true, offers: st.offers.length }
      } catch (err) {
        const msg = err instanceof BaseError ? err.shortMessage : err instanceof Error ? err.message : String(err)
        st.lastError = msg
        cRefresh.inc({ source: id, result: err instanceof PriceRefreshRejectedError ? 'rejected' : 'failed' })
        const retryInMs = scheduleRetry(id, st)
        log.warn({ source: id, err: msg, serving: st.offers.length, retryInMs }, 'price source refresh failed; serving last-known-good')
        return { source: id, ok: false, offers: st.offers.length, error: msg }
      }
    }
    // cleared from outside run(): a loader throwing synchronously finishes run() before the assignment below
    const p = run()
    st.inflight = p
    void p.then(() => {
      if (st.inflight === p) st.inflight = undefined
    })
    return p
  }

  const intervalMs = (task: ScheduledTask): number => {
    const [a, b] = task.getNextRuns(2)
    return a && b ? b.getTime() - a.getTime() : 24 * 3600_000
  }

  const catalog: Catalog = {
    async start() {
      // a disabled source's cache stays on disk but is not served: it would never be refreshed again
      for (const id of enabled) {
        try {
          const c = await readCacheFile(config.cacheDir, id)
          const screened = screen({ offers: c.offers, rejected: [] }, config.sanity)
          const st = states.get(id)!
          setOffers(id, st, screened.offers, c.fetchedAt)
          st.notes = c.notes
          st.facts = c.facts
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
            states.get(id)!.lastError = `cache unreadable: ${(err as Error).message}`
            log.warn({ source: id, err: (err as Error).message }, 'price cache unreadable; ignoring it')
          }
        }
      }
      for (const id of enabled) {
        const task = createTask(config.sources[id].refresh, () => refreshOne(id).then(() => undefined), { name: `pricing:${id}`, noOverlap: true })
        task.unref?.()
        await task.start()
        tasks.push(task)
        intervals.set(id, intervalMs(task))
        const st = states.get(id)!
        if (deps.refreshOnStart !== false && (st.fetchedAt === undefined || now() - st.fetchedAt > intervals.get(id)!)) void refreshOne(id)
      }
      common.onShutdown('pricing-catalog', () => catalog.close())
    },
    async refresh(source, o = {}) {
      if (source === 'own-inventory') return [{ source, ok: true, offers: own.offers.length }]
      if (source && !config.sources[source].enabled) return [{ source, ok: false, offers: 0, error: `source ${source} is disabled` }]
      const ids = source ? [source] : enabled
      return Promise.all(ids.map((id) => refreshOne(id, o.signal)))
    },
    offers() {
      if (!combined) combined = [...own.offers, ...SourceIds.flatMap((id) => states.get(id)!.offers)]
      return combined
    },
    health() {
      const t = now()
      const row = (source: SourceId, st: State): SourceHealth => {
        const h: SourceHealth = {
          source,
          offers: st.offers.length,
          fetchedAt: st.fetchedAt,
          ageMs: st.fetchedAt === undefined ? undefined : t - st.fetchedAt,
        }
        if (st.lastError !== undefined) h.lastError = st.lastError
        if (st.lastAttemptAt !== undefined) h.lastAttemptAt = st.lastAttemptAt
        if (st.rejectedRows !== undefined) h.rejectedRows = st.rejectedRows
        if (st.nextRetryAt !== undefined) h.nextRetryAt = st.nextRetryAt
        if (st.notes?.length) h.notes = st.notes
        if (st.facts?.policy) h.policy = st.facts.policy
        if (st.facts?.tftUsd) h.tftUsd = { ...st.facts.tftUsd, ageMs: t - st.facts.tftUsd.resolvedAt }
        if (h.ageMs !== undefined) gAge.set(h.ageMs / 1000, { source })
        return h
      }
      return [
        row('own-inventory', own),
        ...enabled.map((id) => row(id, states.get(id)!)),
      ]
    },
    async close() {
      if (closed) return
      closed = true
      closer.abort(new Error('pricing catalog closed'))
      for (const st of states.values()) clearRetry(st)
      for (const t of tasks.splice(0)) await t.destroy()
      await Promise.allSettled([...states.values()].map((s) => s.inflight))
    },
  }
  return catalog
}
