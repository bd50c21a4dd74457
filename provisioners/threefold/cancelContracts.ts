/**
 * Cancelling on the grid: every contract is recorded as the daemon's own cancellation (ownCancels.ts) before it is
 * cancelled, so the TFChain intake never takes it for a lost deployment.
 */
import type { CallOptions } from '../types.js'
import { deploymentIdOfName, sig, type Replica, type ThreefoldContext } from './context.js'
import { recordOwnCancels } from './ownCancels.js'

/** Cancel every contract of a replica's grid deployment (node contract with its public IP, and any other by name). */
export async function cancelReplica(ctx: ThreefoldContext, r: Replica, o: CallOptions): Promise<void> {
  const { contracts } = await ctx.p.supervisor.call('listContracts', {}, sig(o.signal))
  const ids = new Set([...r.contracts, ...contracts.filter((c) => (c.deploymentName ?? c.name) === r.name).map((c) => c.contractId)])
  recordOwnCancels(ctx.p.stateDir, deploymentIdOfName(r.name) ?? r.name, [...ids])
  await ctx.p.supervisor.call('deleteVm', { name: r.name }, sig(o.signal))
}

/** Cancel the contracts of deployment `id` that the state does not know of (a crash between deploy and save), found by name. */
export async function cancelUnknown(ctx: ThreefoldContext, id: string, signal: AbortSignal | undefined): Promise<void> {
  const { contracts } = await ctx.p.supervisor.call('listContracts', {}, sig(signal))
  const left = contracts.filter((c) => deploymentIdOfName(c.deploymentName ?? c.name) === id).map((c) => c.contractId)
  if (!left.length) return
  recordOwnCancels(ctx.p.stateDir, id, left)
  await ctx.p.supervisor.call('cancelContracts', { contractIds: left }, sig(signal))
}
