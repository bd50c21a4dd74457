/**
 * Deploy the replicas a deployment is missing: rank the nodes, check the TFT runway, then one VM per missing replica
 * (a node that refuses with a capacity error is skipped for `nodeCooldownMs` and the next is tried), each waited for
 * until it answers.
 */
import { Usd } from '../../core/money.js'
import { failoverOf, ProvisionError } from '../errors.js'
import type { CallOptions, DeploymentRequest } from '../types.js'
import { checkRunway } from './checkRunway.js'
import type { NodeCandidate } from './chooseNode.js'
import { replicaName, type Replica, type ThreefoldContext } from './context.js'
import { waitBooted } from './probeVm.js'
import { rankNodes } from './rankNodes.js'
import { vmSpecOf } from './vmSpec.js'

/** Replica `i` on the first of `ranked` that takes it (at most `maxNodeAttempts` nodes); NO_CAPACITY when none does. */
export async function deployReplica(ctx: ThreefoldContext, req: DeploymentRequest, i: number, ranked: readonly NodeCandidate[], o: CallOptions): Promise<Replica> {
  const { p, failedAt } = ctx
  const tries: string[] = []
  for (const c of ranked.filter((c) => !failedAt.has(c.nodeId) || ctx.now() - failedAt.get(c.nodeId)! >= p.nodeCooldownMs).slice(0, p.maxNodeAttempts ?? 3)) {
    try {
      const r = await p.supervisor.call('deployVm', vmSpecOf(ctx, req, i, c.nodeId), { ...(o.timeoutMs !== undefined && { timeoutMs: o.timeoutMs }), ...(o.signal && { signal: o.signal }) })
      return { name: replicaName(req.deploymentId, i), nodeId: c.nodeId, contracts: r.contracts.map((x) => x.contractId), ...(r.publicIp && { publicIp: r.publicIp }) }
    } catch (err) {
      const f = failoverOf(err)
      if (!f || f.kind !== 'capacity') throw err
      failedAt.set(c.nodeId, ctx.now())
      tries.push(`node ${c.nodeId}: ${(err as Error).message.split('\n')[0]}`)
      ctx.log.warn({ nodeId: c.nodeId, deploymentId: req.deploymentId }, 'grid node refused the deployment: trying the next node')
    }
  }
  throw new ProvisionError('no grid node could take the replica', { code: 'NO_CAPACITY', reason: 'NO_CAPACITY', retryable: false, details: tries, meta: { failover: { kind: 'capacity', scope: 'provider' } } })
}

/** Deploy what deployment `id` lacks of its wanted replicas (each saved in the state as soon as it exists). */
export async function deployMissing(ctx: ThreefoldContext, id: string, o: CallOptions): Promise<void> {
  const { p, state } = ctx
  const e = state[id]!
  const req = e.request
  const { ranked, rejected } = await rankNodes(ctx, req, o.signal)
  if (!ranked.length) throw new ProvisionError('no grid node fits the spec', { code: 'NO_CAPACITY', reason: 'NO_CAPACITY', details: rejected.slice(0, 10).map((r) => `${r.instanceType}: ${r.why}`), meta: { failover: { kind: 'capacity', scope: 'provider' } } })
  const missing = e.wanted - e.replicas.length
  if (missing <= 0) return
  const running = Object.entries(state).filter(([k]) => k !== id).map(([, x]) => new Usd(x.hourlyUsd).mul(x.replicas.length))
  const balance = await p.supervisor.call('balance', {}, { ...(o.signal && { signal: o.signal }) })
  checkRunway({ freeTft: balance.freeTft, runningHourlyUsd: [...running, ranked[0]!.hourlyUsd.mul(e.replicas.length)], newHourlyUsd: ranked[0]!.hourlyUsd.mul(missing), usdPerTft: await p.tftUsd(), buffer: p.tftBuffer, minRunwayHours: p.minRunwayHours })
  e.hourlyUsd = ranked[0]!.hourlyUsd.toString()
  for (let i = 0; i < e.wanted; i++) {
    if (e.replicas.some((r) => r.name === replicaName(id, i))) continue
    const r = await deployReplica(ctx, req, i, ranked, o)
    e.replicas.push(r)
    ctx.save()
    await waitBooted(ctx, req, r, o.signal)
  }
}
