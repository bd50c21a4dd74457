/**
 * Provisioner.provision: find the deployment (ledger, else its host's manifest, adopted) or place it on the cheapest
 * host that fits, reserving first; then run the wanted replicas and wait until they are healthy. Idempotent on the
 * deployment id.
 */
import { ProvisionError } from '../errors.js'
import type { CallOptions, DeploymentRequest, DeploymentStatus } from '../types.js'
import { call, hostOf, locked, unitOf, type SshContext } from './context.js'
import { adopt, locate } from './locate.js'
import { placeAndReserve } from './reserve.js'
import { scaleTo } from './scale.js'
import type { Placement } from './types.js'
import { assertRequest } from './validate.js'

export function deploy(ctx: SshContext, req: DeploymentRequest, o?: CallOptions): Promise<DeploymentStatus> {
  const { ledger, sourceKinds } = ctx
  return call(ctx, 'provision', o, ctx.provisionMs, (signal) =>
    locked(ctx, req.deploymentId ?? '', async () => {
      assertRequest(req)
      if (!sourceKinds.includes(req.source.kind)) throw new ProvisionError(`source kind ${req.source.kind} is not accepted by this operator`, { reason: 'MALFORMED_REQUEST', code: 'SOURCE_KIND_REFUSED' })
      const kind: Placement['kind'] = req.source.kind === 'container' ? 'container' : 'native'
      const id = req.deploymentId
      let found = await locate(ctx, id, signal, req.placement)
      if (found && !ledger.get(id)) await adopt(ctx, found.placement)
      if (!found) {
        const pl = await placeAndReserve(ctx, req, kind, signal)
        ctx.log.info({ deploymentId: id, host: pl.host, kind }, 'placing deployment')
        found = { host: hostOf(ctx, pl), placement: pl, remote: { present: false } }
      } else if (!found.remote.present) {
        // recorded here but gone from its host (an interrupted first attempt): start over on the same host
        const pl: Placement = { ...found.placement, request: req, kind, unit: unitOf(req), replicas: 0, dataReplicas: 0 }
        await ledger.update((d) => (d.placements[id] = pl))
        found = { ...found, placement: pl }
      }
      return scaleTo(ctx, found.host, id, req.spec.replicas, signal)
    }),
  )
}
