/** Provisioner.scale, and bringing a placed deployment to `n` replicas (which provision ends with too). */
import { ProvisionError } from '../errors.js'
import type { CallOptions, DeploymentStatus } from '../types.js'
import { call, locked, type SshContext } from './context.js'
import { converge } from './converge.js'
import { adopt, locate } from './locate.js'
import { writeManifest } from './manifest.js'
import { allocatePorts, ensureUid, reserve } from './reserve.js'
import { statusFrom, waitReady } from './status.js'
import type { SshHost } from './types.js'
import { assertDeploymentId, assertReplicas } from './validate.js'

/** Provisioner.scale: an existing deployment (adopted when only its host knows it) to `replicas`, once healthy. */
export function scale(ctx: SshContext, deploymentId: string, replicas: number, o?: CallOptions): Promise<DeploymentStatus> {
  return call(ctx, 'scale', o, ctx.provisionMs, (signal) =>
    locked(ctx, deploymentId, async () => {
      assertDeploymentId(deploymentId)
      assertReplicas(replicas)
      const found = await locate(ctx, deploymentId, signal)
      if (!found || !found.remote.present) throw new ProvisionError(`deployment ${deploymentId} does not exist on any SSH host`, { code: 'DEPLOYMENT_NOT_FOUND', retryable: false })
      if (!ctx.ledger.get(deploymentId)) await adopt(ctx, found.placement)
      return scaleTo(ctx, found.host, deploymentId, replicas, signal)
    }),
  )
}

/**
 * Run `n` replicas of the ledger's deployment `id` on `h` and wait until they are healthy. Growing reserves capacity,
 * ports and the uid (and writes the manifest) before starting; shrinking releases capacity only once replicas stopped.
 */
export async function scaleTo(ctx: SshContext, h: SshHost, id: string, n: number, signal: AbortSignal): Promise<DeploymentStatus> {
  const { ledger } = ctx
  const growing = n >= ledger.get(id)!.replicas
  // growing reserves before starting; shrinking releases capacity only once the replicas are stopped
  let pl = growing ? await reserve(ctx, id, n) : ledger.get(id)!
  if (growing) {
    await allocatePorts(ctx, h, id, n, signal)
    pl = await ensureUid(ctx, h, id)
    await writeManifest(ctx, h, pl, signal)
  }
  const written = JSON.stringify(pl.ports)
  await converge(ctx, h, id, n, signal)
  if (!growing) pl = await reserve(ctx, id, n)
  else pl = ledger.get(id)!
  // converge may have moved a replica to a new port
  if (!growing || JSON.stringify(pl.ports) !== written) await writeManifest(ctx, h, pl, signal)
  await waitReady(ctx, h, pl, signal)
  return statusFrom(ctx, h, pl, await ctx.agent.status(h, id, { signal }), signal)
}
