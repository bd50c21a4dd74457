/** The nodes a request may use, best first: the catalog's threefold offers re-checked at the grid proxy (chooseNode). */
import { withTimeout } from '../../core/retry.js'
import { parseGridFarmList, type GridFarm } from '../../core/gridFarms.js'
import { TargetUnreachableError } from '../errors.js'
import type { DeploymentRequest } from '../types.js'
import { chooseNode, nodeIdOfOffer, type GridProxyNode } from './chooseNode.js'
import type { ThreefoldContext } from './context.js'

/** GET a grid proxy path as JSON; TARGET_UNREACHABLE (retryable) on any failure. */
export async function proxyGet<T>(ctx: ThreefoldContext, path: string, signal?: AbortSignal): Promise<T> {
  try {
    return await withTimeout(`grid proxy GET ${path}`, ctx.p.proxyTimeoutMs ?? 10_000, async (s) => {
      const res = await fetch(new URL(path, ctx.p.proxyUrl), { signal: s, headers: { accept: 'application/json' } })
      if (!res.ok) throw new Error(`HTTP ${res.status}`)
      return (await res.json()) as T
    }, signal)
  } catch (err) {
    throw new TargetUnreachableError('the ThreeFold grid proxy', err, [`GET ${path}`])
  }
}

/** Rank the nodes placement may use for this request (its own offer's node first when eligible). */
export async function rankNodes(ctx: ThreefoldContext, req: DeploymentRequest, signal?: AbortSignal): Promise<ReturnType<typeof chooseNode>> {
  const { p } = ctx
  const offers = p.catalogOffers().filter((o) => o.provider === 'threefold' && (!req.offer || o.region === req.offer.region || !req.spec.regions.length))
  const ids = [...new Set(offers.toSorted((a, b) => a.hourlyUsd.cmp(b.hourlyUsd)).map(nodeIdOfOffer).filter((x): x is number => x !== undefined))]
  const wanted = req.offer ? nodeIdOfOffer({ instanceType: req.offer.instanceType }) : undefined
  const pick = [...(wanted !== undefined ? [wanted] : []), ...ids.filter((i) => i !== wanted)].slice(0, p.maxCandidates ?? 8)
  const nodes = new Map<number, GridProxyNode>()
  for (const id of pick) nodes.set(id, await proxyGet<GridProxyNode>(ctx, `/nodes/${id}`, signal))
  const farmFreeIpv4 = req.spec.ports.length ? parseGridFarmList(await proxyGet<GridFarm[]>(ctx, '/farms?free_ips=1', signal)).freeIpv4 : undefined
  const r = chooseNode({ offers: offers.filter((o) => nodes.has(nodeIdOfOffer(o) ?? -1)), nodes, spec: req.spec, farms: p.farms, failedAt: ctx.failedAt, cooldownMs: p.nodeCooldownMs, now: ctx.now(), ...(farmFreeIpv4 && { farmFreeIpv4 }) })
  const first = r.ranked.findIndex((c) => c.nodeId === wanted)
  if (first > 0) r.ranked.unshift(...r.ranked.splice(first, 1))
  return r
}
