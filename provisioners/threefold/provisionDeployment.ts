/**
 * provision: adopt what a crashed daemon deployed under the deployment's names, deploy what is missing; when that
 * fails, every replica of this attempt is cancelled before the error goes up (nothing half-made stays behind).
 */
import { AbortedError, BaseError } from '../../core/errors.js'
import { assertEnvAllowed } from '../envPolicy.js'
import { ProvisionError } from '../errors.js'
import type { DeploymentRequest, DeploymentStatus } from '../types.js'
import { cancelReplica } from './cancelContracts.js'
import { deploymentIdOfName, sig, type ThreefoldContext } from './context.js'
import { deployMissing } from './deployReplicas.js'
import { answeringReplicas } from './probeVm.js'
import type { GridContract } from './protocol.js'
import { liveContracts, statusOf } from './statusOf.js'

export async function provisionDeployment(ctx: ThreefoldContext, req: DeploymentRequest, signal: AbortSignal | undefined): Promise<DeploymentStatus> {
  const { state } = ctx
  const id = req.deploymentId
  assertEnvAllowed(req.env)
  const fresh = !state[id]
  if (fresh) {
    const { contracts } = await ctx.p.supervisor.call('listContracts', {}, sig(signal))
    state[id] = { request: req, wanted: req.spec.replicas, hourlyUsd: '0', replicas: [] }
    for (const [name, cs] of groupByName(contracts)) if (deploymentIdOfName(name) === id) state[id]!.replicas.push({ name, nodeId: cs[0]!.nodeId ?? 0, contracts: cs.map((c) => c.contractId) })
    ctx.save()
  }
  const before = new Set(state[id]!.replicas.map((r) => r.name))
  try {
    await deployMissing(ctx, id, sig(signal))
  } catch (err) {
    const e = state[id]!
    const created = fresh ? e.replicas : e.replicas.filter((r) => !before.has(r.name))
    for (const r of created) await cancelReplica(ctx, r, {}).catch((e2: unknown) => ctx.log.error({ err: e2, name: r.name }, 'cancel after a failed provision failed'))
    if (fresh) delete state[id]
    else e.replicas = e.replicas.filter((r) => before.has(r.name))
    ctx.save()
    if (signal?.aborted) throw new AbortedError('threefold provision', signal.reason)
    throw err instanceof BaseError ? err : new ProvisionError('grid deployment failed', { cause: err, retryable: true })
  }
  return statusOf(ctx, id, await liveContracts(ctx, signal), await answeringReplicas(ctx, id))
}

function groupByName(contracts: readonly GridContract[]): Map<string, GridContract[]> {
  const m = new Map<string, GridContract[]>()
  for (const c of contracts) {
    const n = c.deploymentName ?? c.name
    if (!n) continue
    m.set(n, [...(m.get(n) ?? []), c])
  }
  return m
}
