/**
 * restart on the grid: Zero-OS has no call that restarts a VM from outside, so the replicas whose VM does not answer
 * are replaced — their contracts cancelled (recorded as the daemon's own first), new VMs deployed and waited for.
 * A deployment whose VMs all answer is left as it is.
 */
import type { DeploymentStatus } from '../types.js'
import { cancelReplica } from './cancelContracts.js'
import { sig, type ThreefoldContext } from './context.js'
import { deployMissing } from './deployReplicas.js'
import { answeringReplicas } from './probeVm.js'
import { liveContracts, statusOf } from './statusOf.js'

export async function replaceSilent(ctx: ThreefoldContext, id: string, signal: AbortSignal | undefined): Promise<DeploymentStatus> {
  // replicas whose contracts are gone are forgotten first (statusOf), then deployed again below
  statusOf(ctx, id, await liveContracts(ctx, signal))
  const e = ctx.state[id]
  if (!e) return statusOf(ctx, id)
  const answering = await answeringReplicas(ctx, id)
  for (const r of e.replicas.filter((x) => !answering.has(x.name))) {
    ctx.log.warn({ name: r.name, nodeId: r.nodeId, address: r.publicIp }, 'grid VM does not answer: replacing it')
    await cancelReplica(ctx, r, sig(signal))
    e.replicas = e.replicas.filter((x) => x !== r)
    ctx.save()
  }
  if (e.replicas.length < e.wanted) await deployMissing(ctx, id, sig(signal))
  return statusOf(ctx, id, await liveContracts(ctx, signal), await answeringReplicas(ctx, id))
}
