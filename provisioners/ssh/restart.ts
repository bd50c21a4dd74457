/** Provisioner.restart: stop and start again the wanted replicas that do not answer their health path. */
import { ProvisionError } from '../errors.js'
import type { CallOptions, DeploymentStatus } from '../types.js'
import { call, endpointOf, locked, nameOf, type SshContext } from './context.js'
import { converge } from './converge.js'
import { locate } from './locate.js'
import { statusFrom, waitReady } from './status.js'
import { assertDeploymentId } from './validate.js'

export function restart(ctx: SshContext, deploymentId: string, o?: CallOptions): Promise<DeploymentStatus> {
  const { agent, log } = ctx
  return call(ctx, 'restart', o, ctx.provisionMs, (signal) =>
    locked(ctx, deploymentId, async () => {
      assertDeploymentId(deploymentId)
      const found = await locate(ctx, deploymentId, signal)
      if (!found || !found.remote.present) throw new ProvisionError(`deployment ${deploymentId} does not exist on any SSH host`, { code: 'DEPLOYMENT_NOT_FOUND', retryable: false })
      const { host: h, placement: pl } = found
      const st = await statusFrom(ctx, h, pl, found.remote, signal)
      const depDir = agent.layout(h).dep(deploymentId)
      const readyPorts = new Set(st.endpoints)
      const bad = Array.from({ length: pl.replicas }, (_, i) => i).filter((i) => {
        const port = pl.ports[String(i)]
        return port === undefined || !readyPorts.has(endpointOf(h, port))
      })
      for (const i of bad) {
        log.warn({ deploymentId, host: h.name, replica: i }, 'restarting an unhealthy replica')
        await agent.must(h, `stopping replica ${i}`, ['stop', depDir, String(i), ctx.grace, nameOf(ctx, h, deploymentId, i)], { signal })
      }
      if (bad.length) {
        await converge(ctx, h, deploymentId, pl.replicas, signal)
        await waitReady(ctx, h, pl, signal)
      }
      return statusFrom(ctx, h, pl, await agent.status(h, deploymentId, { signal }), signal)
    }),
  )
}
