/**
 * One refresh of the ThreeFold source: the grid's nodes priced with TFChain's pricing policy, marked where their farm
 * has no free public IPv4, beside the TFT/USD rate of the moment. Only the node list is essential: when the policy
 * cannot be read from the chain the configured one prices the offers, when the farms cannot be read no offer is
 * marked, and when the rate cannot be resolved the catalog keeps the last one — each such fallback is a note in the
 * source's status, never a failed refresh.
 */
import { BaseError } from '../../core/errors.js'
import type { PricingConfig } from '../config.js'
import type { SourceLoadContext } from './index.js'
import { fetchGridFarms, fetchGridNodes, parseGridFarmList, parseGridNodeList, resolveTftUsd, type TftRate } from './threefold.js'
import type { LoadResult, PolicyInUse, SourceFacts, TftUsdInUse } from './types.js'

const message = (err: unknown) => (err instanceof BaseError ? err.shortMessage : err instanceof Error ? err.message : String(err)).split('\n')[0]!

export type ThreefoldPolicyResult = {
  policy: PolicyInUse
  /** Set when a configured TFChain node could not give the policy and the configured one stands in. */
  note?: string
}

/**
 * The pricing policy to price with: `tfgridModule.pricingPolicies(config.threefold.pricingPolicyId)` read from the
 * node at `config.tftUsd.tfchainUrl`, else (no node, or the read failed) `config.threefold.policy`.
 */
export async function threefoldPolicy(config: PricingConfig, p: { signal?: AbortSignal } = {}): Promise<ThreefoldPolicyResult> {
  const id = config.threefold.pricingPolicyId
  const configured: PolicyInUse = { id, from: 'config', ...config.threefold.policy }
  const url = config.tftUsd.tfchainUrl
  if (!url) return { policy: configured }
  try {
    // loaded on demand: it pulls in @polkadot/api
    const { fetchTfchainPricingPolicy } = await import('./tfchain.js')
    const r = await fetchTfchainPricingPolicy({ url, signal: p.signal, timeoutMs: config.tftUsd.timeoutMs, types: config.tftUsd.tfchainTypes, pricingPolicyId: id })
    return { policy: { id, from: 'tfchain', ...r.policy, specVersion: r.specVersion } }
  } catch (err) {
    return { policy: configured, note: `pricing policy ${id} not read from TFChain (${message(err)}); priced with the configured policy` }
  }
}

/** A resolved rate in its JSON-safe form. */
export function tftUsdInUse(rate: TftRate, resolvedAt: number): TftUsdInUse {
  return {
    usdPerTft: rate.usdPerTft.toString(),
    used: rate.used.map((u) => ({ source: u.source, usdPerTft: u.usdPerTft.toString() })),
    discarded: rate.discarded.map((d) => ({ source: d.source, ...(d.usdPerTft && { usdPerTft: d.usdPerTft.toString() }), why: d.why })),
    resolvedAt,
  }
}

const settle = <T>(x: Promise<T>) => x.then((value) => ({ ok: true as const, value }), (error: unknown) => ({ ok: false as const, error }))

/** The `threefold` source's loader (see the file comment). */
export async function loadThreefold({ config, signal, fetchedAt }: SourceLoadContext): Promise<LoadResult> {
  const c = config.sources.threefold
  const http = { url: c.url, signal, timeoutMs: c.timeoutMs, pageSize: c.pageSize, maxPages: c.maxPages }
  // side readings run beside the node list and are waited for, so that no connection outlives the refresh
  const [nodes, policy, farms, rate] = await Promise.all([
    settle(fetchGridNodes({ ...http, minFreeMemoryGiB: c.minFreeMemoryGiB })),
    threefoldPolicy(config, { signal }),
    settle(fetchGridFarms(http)),
    settle(resolveTftUsd(config.tftUsd, { signal })),
  ])
  if (!nodes.ok) throw nodes.error
  const notes: string[] = []
  if (policy.note) notes.push(policy.note)
  let farmFreeIpv4: ReadonlyMap<number, number> | undefined
  const farmRejected = []
  if (!farms.ok) notes.push(`public IPv4 availability unknown, no offer marked (farms: ${message(farms.error)})`)
  else if (!farms.value.complete) notes.push(`public IPv4 availability unknown, no offer marked (more than ${c.maxPages} pages of farms)`)
  else {
    const parsed = parseGridFarmList(farms.value.farms)
    farmFreeIpv4 = parsed.freeIpv4
    farmRejected.push(...parsed.rejected)
  }
  const facts: SourceFacts = { policy: policy.policy }
  if (rate.ok) facts.tftUsd = tftUsdInUse(rate.value, fetchedAt)
  else notes.push(`TFT/USD not resolved (${message(rate.error)}${rate.error instanceof BaseError && rate.error.details.length ? `: ${rate.error.details.join('; ')}` : ''})`)
  const result = parseGridNodeList(nodes.value, {
    fetchedAt,
    limits: config.sanity,
    policy: policy.policy,
    discount: config.threefold.discount,
    ...(farmFreeIpv4 && { farmFreeIpv4 }),
  })
  return { offers: result.offers, rejected: [...result.rejected, ...farmRejected], notes, facts }
}
