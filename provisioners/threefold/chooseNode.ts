/**
 * Node choice among the ThreeFold offers placement may buy: nodes that are up, in an allowed farm, with free
 * resources for the spec (a free public IPv4 in the farm when the spec has ports, GPUs when asked), not failed within
 * the cooldown; ordered by price, then uptime (longer first), then free capacity (more first).
 */
import type { Decimal } from 'decimal.js'
import type { Offer } from '../../core/offer.js'
import type { ResourceSpec } from '../../core/spec.js'

/** A node as the grid proxy answers GET /nodes/{id} (sizes in bytes, `cru` in cores). */
export type GridProxyNode = {
  nodeId: number
  farmId: number
  status: string
  /** Seconds since the node booted. */
  uptime?: number
  country?: string
  total_resources: { cru: number; sru: number; hru: number; mru: number }
  used_resources: { cru: number; sru: number; hru: number; mru: number }
  gpus?: unknown[]
}

export type NodeCandidate = { nodeId: number; offer: Offer; node: GridProxyNode; hourlyUsd: Decimal }

export type ChooseNodeParameters = {
  offers: readonly Offer[]
  nodes: ReadonlyMap<number, GridProxyNode>
  spec: Pick<ResourceSpec, 'vcpu' | 'memoryGiB' | 'storageGiB' | 'gpu' | 'ports'>
  /** Free public IPv4 per farm; unknown farms are assumed to have none when the spec has ports. */
  farmFreeIpv4?: ReadonlyMap<number, number>
  /** Allowed farm ids; empty = all. */
  farms: readonly number[]
  /** nodeId → when a deployment there last failed, ms. */
  failedAt: ReadonlyMap<number, number>
  cooldownMs: number
  now: number
}

const GiB = 1024 ** 3

/** The node id an offer sells (`node-<id>/...`), or undefined. */
export function nodeIdOfOffer(o: Pick<Offer, 'instanceType'>): number | undefined {
  const m = /^node-(\d+)\//.exec(o.instanceType)
  return m ? Number(m[1]) : undefined
}

/** Free bytes/cores of a node (used can exceed total: overcommit reads as 0 free). */
export function freeResources(n: GridProxyNode) {
  const f = (k: 'cru' | 'sru' | 'hru' | 'mru') => Math.max(0, n.total_resources[k] - n.used_resources[k])
  return { cru: f('cru'), mruGiB: f('mru') / GiB, sruGiB: f('sru') / GiB, hruGiB: f('hru') / GiB }
}

/** Eligible nodes best first, and why every other offer was left out. */
export function chooseNode(p: ChooseNodeParameters): { ranked: NodeCandidate[]; rejected: Array<{ instanceType: string; why: string }> } {
  const rejected: Array<{ instanceType: string; why: string }> = []
  const best = new Map<number, NodeCandidate>()
  const allowed = new Set(p.farms)
  for (const offer of p.offers) {
    const why = (w: string) => void rejected.push({ instanceType: offer.instanceType, why: w })
    if (offer.provider !== 'threefold') continue
    const nodeId = nodeIdOfOffer(offer)
    if (nodeId === undefined) {
      why('not a node offer')
      continue
    }
    const node = p.nodes.get(nodeId)
    if (!node) {
      why(`node ${nodeId} unknown to the grid proxy`)
      continue
    }
    if (node.status !== 'up') {
      why(`node ${nodeId} is ${node.status}`)
      continue
    }
    if (allowed.size && !allowed.has(node.farmId)) {
      why(`farm ${node.farmId} is not allowed`)
      continue
    }
    const failed = p.failedAt.get(nodeId)
    if (failed !== undefined && p.now - failed < p.cooldownMs) {
      why(`node ${nodeId} failed ${Math.round((p.now - failed) / 1000)} s ago`)
      continue
    }
    const free = freeResources(node)
    if (offer.vcpu < p.spec.vcpu || offer.memoryGiB < p.spec.memoryGiB) {
      why('offer smaller than the spec')
      continue
    }
    if (free.cru < p.spec.vcpu || free.mruGiB < p.spec.memoryGiB || free.sruGiB < p.spec.storageGiB) {
      why(`node ${nodeId} lacks free capacity (${free.cru} cores, ${free.mruGiB.toFixed(1)} GiB memory, ${free.sruGiB.toFixed(1)} GiB ssd free)`)
      continue
    }
    if (p.spec.gpu.count > 0 && (node.gpus?.length ?? 0) < p.spec.gpu.count) {
      why(`node ${nodeId} has ${node.gpus?.length ?? 0} GPUs`)
      continue
    }
    if (p.spec.ports.length > 0 && (p.farmFreeIpv4?.get(node.farmId) ?? 0) < 1) {
      why(`farm ${node.farmId} has no free public IPv4`)
      continue
    }
    const prev = best.get(nodeId)
    // several sizes of one node: keep the cheapest that fits
    if (!prev || offer.hourlyUsd.lt(prev.hourlyUsd)) best.set(nodeId, { nodeId, offer, node, hourlyUsd: offer.hourlyUsd })
  }
  const score = (c: NodeCandidate) => {
    const f = freeResources(c.node)
    return f.cru * 1e6 + f.mruGiB * 1e3 + f.sruGiB
  }
  const ranked = [...best.values()].sort((a, b) => a.hourlyUsd.cmp(b.hourlyUsd) || (b.node.uptime ?? 0) - (a.node.uptime ?? 0) || score(b) - score(a) || a.nodeId - b.nodeId)
  return { ranked, rejected }
}
