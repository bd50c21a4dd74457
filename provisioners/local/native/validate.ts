/** What the local process runner accepts: a deployment request, a deployment id, a manifest of this operator. */
import { assertEnvAllowed } from '../../envPolicy.js'
import { ProvisionError } from '../../errors.js'
import type { DeploymentRequest } from '../../types.js'
import type { Manifest } from '../manifest.js'
import { DEPLOYMENT_ID, type LocalContext } from './context.js'
import { invalid } from './errors.js'

/** Throws REQUEST_INVALID with every problem of `req` at once, or SOURCE_KIND_UNSUPPORTED. */
export function validate(ctx: LocalContext, req: DeploymentRequest): void {
  // the same env policy as the SSH target: the /bin/sh wrapper that joins the cgroups runs with this env too
  assertEnvAllowed(req.env)
  const problems: string[] = []
  if (typeof req.deploymentId !== 'string' || !DEPLOYMENT_ID.test(req.deploymentId)) {
    problems.push(`deploymentId: got ${JSON.stringify(req.deploymentId)}, expected a DNS label`)
  }
  if (!/^\d{1,78}$/.test(String(req.serviceId))) problems.push(`serviceId: got ${JSON.stringify(req.serviceId)}, expected a decimal string`)
  if (!/^\d{1,78}$/.test(String(req.blueprintId))) problems.push(`blueprintId: got ${JSON.stringify(req.blueprintId)}, expected a decimal string`)
  for (const k of ['vcpu', 'memoryGiB'] as const) {
    const v = req.spec?.[k]
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) problems.push(`spec.${k}: got ${v}, expected a finite number >= 0`)
  }
  const r = req.spec?.replicas
  if (!Number.isInteger(r) || r < 0 || r > ctx.maxReplicas) problems.push(`spec.replicas: got ${r}, expected an integer 0..${ctx.maxReplicas}`)
  if (req.healthPath !== undefined && !/^\/[^\s]*$/.test(req.healthPath)) problems.push(`healthPath: got ${JSON.stringify(req.healthPath)}, expected a path starting with /`)
  if (problems.length) throw invalid(problems)
  if (!ctx.sourceKinds.includes(req.source?.kind)) {
    throw new ProvisionError(`the local target cannot run ${String(req.source?.kind)} sources`, {
      code: 'SOURCE_KIND_UNSUPPORTED',
      reason: 'PROVISION_FAILED',
      meta: { deploymentId: req.deploymentId },
    })
  }
}

/** Throws REQUEST_INVALID unless `id` is a DNS label. */
export function validateId(id: string): void {
  if (typeof id !== 'string' || !DEPLOYMENT_ID.test(id)) throw invalid([`deploymentId: got ${JSON.stringify(id)}, expected a DNS label`])
}

/** `m` itself, or DEPLOYMENT_FOREIGN when another operator (sharing the rootDir) wrote it. */
export function ownManifest(ctx: LocalContext, m: Manifest): Manifest {
  if (m.operatorId !== ctx.operatorId) {
    throw new ProvisionError(`deployment ${m.deploymentId} in ${ctx.rootDir} belongs to operator ${m.operatorId}`, {
      code: 'DEPLOYMENT_FOREIGN',
      meta: { deploymentId: m.deploymentId },
    })
  }
  return m
}
