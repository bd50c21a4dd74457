/** The Zero-OS VM of replica `i` of a request: the runner flist, the artifact by URL and sha256, the target's env. */
import { ProvisionError } from '../errors.js'
import type { DeploymentRequest } from '../types.js'
import { replicaName, type ThreefoldContext } from './context.js'
import type { GridVmSpec } from './protocol.js'

/** The runner's entrypoint: a fixed script; the artifact's URL and digest arrive as environment values, never spliced in. */
export const RUNNER_ENTRYPOINT = '/bin/sh -c \'wget -q -O /bp "$BP_URL" && echo "$BP_SHA256  /bp" | sha256sum -c - && chmod 0755 /bp && exec /bp\''

export function vmSpecOf(ctx: Pick<ThreefoldContext, 'p'>, req: DeploymentRequest, i: number, nodeId: number): GridVmSpec {
  const src = req.source
  if (src.kind === 'container' || (src.kind === 'testing' && !ctx.p.allowTestingSources)) throw new ProvisionError(`the grid target cannot run ${src.kind} sources`, { code: 'PROVISION_FAILED', retryable: false })
  return {
    name: replicaName(req.deploymentId, i),
    nodeId,
    cpu: Math.max(1, Math.ceil(req.spec.vcpu)),
    memoryMb: Math.max(256, Math.ceil(req.spec.memoryGiB * 1024)),
    rootfsGb: 2,
    diskGb: Math.ceil(req.spec.storageGiB),
    flist: ctx.p.runnerFlist,
    entrypoint: RUNNER_ENTRYPOINT,
    // what every target sets (provisioners/envPolicy.ts): the VM is the replica's host, so it listens on every address
    env: {
      ...(req.env ?? {}),
      BP_URL: src.url,
      BP_SHA256: src.sha256,
      PORT: String(req.spec.ports[0] ?? 8080),
      HOST: '0.0.0.0',
      SERVICE_ID: req.serviceId,
      BLUEPRINT_ID: req.blueprintId,
      DEPLOYMENT_ID: req.deploymentId,
      REPLICA_INDEX: String(i),
      ...(req.spec.storageGiB > 0 && { DATA_DIR: '/data' }),
    },
    publicIp: req.spec.ports.length > 0,
    networkName: `n${req.deploymentId.replace(/[^a-z0-9]/g, '').slice(-14)}`,
    deploymentId: req.deploymentId,
  }
}
