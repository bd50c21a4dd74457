/** `Provisioner.scale`: record the wanted replica count, then converge (0 stops every replica, the data is kept). */
import type { CallOptions, DeploymentStatus } from '../../types.js'
import { readManifest, writeManifest } from '../manifest.js'
import { ensureArtifact } from './artifact.js'
import { call, depDir, locked, type LocalContext } from './context.js'
import { converge } from './converge.js'
import { invalid, notFound } from './errors.js'
import { statusOf } from './status.js'
import { ownManifest, validateId } from './validate.js'

/** Bring deployment `id` to `replicas` (0..maxReplicas); DEPLOYMENT_NOT_FOUND when it has no manifest here. */
export function scale(ctx: LocalContext, id: string, replicas: number, o?: CallOptions): Promise<DeploymentStatus> {
  return call(ctx, `local scale ${id}`, ctx.longCallMs, o, async (signal) => {
    validateId(id)
    if (!Number.isInteger(replicas) || replicas < 0 || replicas > ctx.maxReplicas) throw invalid([`replicas: got ${replicas}, expected an integer 0..${ctx.maxReplicas}`])
    return locked(ctx, id, signal, async () => {
      const m = await readManifest(depDir(ctx, id))
      if (!m) throw notFound(id)
      ownManifest(ctx, m)
      m.replicas = replicas
      await writeManifest(depDir(ctx, id), m)
      if (replicas > 0) await ensureArtifact(ctx, m, signal)
      await converge(ctx, m, signal, false)
      ctx.log.info({ deploymentId: id, replicas }, 'deployment scaled')
      return statusOf(ctx, id, signal)
    })
  })
}
