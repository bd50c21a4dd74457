/** `Provisioner.provision`: record the deployment's manifest, fetch its artifact, converge; idempotent on the id. */
import { mkdir, rm } from 'node:fs/promises'
import type { CallOptions, DeploymentRequest, DeploymentStatus } from '../../types.js'
import { readManifest, writeManifest, type Manifest } from '../manifest.js'
import { ensureArtifact } from './artifact.js'
import { call, depDir, locked, type LocalContext } from './context.js'
import { converge } from './converge.js'
import { checkAborted } from './errors.js'
import { statusOf } from './status.js'
import { ownManifest, validate } from './validate.js'

/** Run `req` (a second call adopts what the first started, with the request it now carries); resolves healthy. */
export function provision(ctx: LocalContext, req: DeploymentRequest, o?: CallOptions): Promise<DeploymentStatus> {
  return call(ctx, `local provision ${req?.deploymentId}`, ctx.longCallMs, o, async (signal) => {
    validate(ctx, req)
    const id = req.deploymentId
    return locked(ctx, id, signal, async () => {
      await mkdir(ctx.deploymentsDir, { recursive: true })
      const existing = await readManifest(depDir(ctx, id))
      if (existing) ownManifest(ctx, existing)
      const now = new Date().toISOString()
      const m: Manifest = existing
        ? { ...existing, request: req, replicas: req.spec.replicas }
        : { version: 1, deploymentId: id, operatorId: ctx.operatorId, request: req, replicas: req.spec.replicas, replicaRecords: [], createdAt: now, updatedAt: now }
      await writeManifest(depDir(ctx, id), m)
      try {
        checkAborted(signal, `local provision ${id}`)
        if (m.replicas > 0) await ensureArtifact(ctx, m, signal)
        await converge(ctx, m, signal, false)
      } catch (err) {
        // only a record this call created, with no replica ever planned, is safe to forget
        if (!existing && m.replicaRecords.length === 0) await rm(depDir(ctx, id), { recursive: true, force: true }).catch(() => undefined)
        throw err
      }
      ctx.log.info({ deploymentId: id, replicas: m.replicas }, 'deployment provisioned')
      return statusOf(ctx, id, signal)
    })
  })
}
