/** `Provisioner.restart`: converge once more, replacing replicas that are dead or fail their health probe. */
import type { CallOptions, DeploymentStatus } from '../../types.js'
import { readManifest } from '../manifest.js'
import { ensureArtifact } from './artifact.js'
import { call, depDir, locked, type LocalContext } from './context.js'
import { converge } from './converge.js'
import { notFound } from './errors.js'
import { statusOf } from './status.js'
import { ownManifest, validateId } from './validate.js'

/** Restart what is dead or unhealthy of deployment `id` (its data kept); DEPLOYMENT_NOT_FOUND without a manifest. */
export function restart(ctx: LocalContext, id: string, o?: CallOptions): Promise<DeploymentStatus> {
  return call(ctx, `local restart ${id}`, ctx.longCallMs, o, async (signal) => {
    validateId(id)
    return locked(ctx, id, signal, async () => {
      const m = await readManifest(depDir(ctx, id))
      if (!m) throw notFound(id)
      ownManifest(ctx, m)
      if (m.replicas > 0) await ensureArtifact(ctx, m, signal)
      await converge(ctx, m, signal, true)
      return statusOf(ctx, id, signal)
    })
  })
}
