/**
 * Provisioner.destroy: remove everything of a deployment from its host (every known host when the ledger does not
 * know it: the orphan sweep), then forget its placement. Already gone is success.
 */
import { TargetUnreachableError } from '../errors.js'
import type { CallOptions } from '../types.js'
import { removeContainers } from './containers.js'
import { call, cgroupPrefixOf, hostOf, locked, type SshContext } from './context.js'
import { assertDeploymentId } from './validate.js'

export function destroy(ctx: SshContext, deploymentId: string, o?: CallOptions): Promise<void> {
  const { agent, ledger } = ctx
  return call(ctx, 'destroy', o, ctx.otherMs, (signal) =>
    locked(ctx, deploymentId, async () => {
      assertDeploymentId(deploymentId)
      const known = ledger.get(deploymentId)
      const targets = known ? [hostOf(ctx, known)] : [...ctx.hosts.values()]
      let unreachable: unknown
      await Promise.all(
        targets.map(async (h) => {
          try {
            await agent.must(h, 'destroying the deployment', ['destroy', agent.layout(h).dep(deploymentId), ctx.grace, cgroupPrefixOf(ctx, h, deploymentId)], { signal })
            const f = await agent.facts(h, { signal })
            if (f.runtime !== 'none') await removeContainers(ctx, h, f.runtime, deploymentId, signal)
          } catch (err) {
            if (!(err instanceof TargetUnreachableError) || known) throw err
            unreachable = err
          }
        }),
      )
      if (unreachable) throw unreachable
      if (known) await ledger.update((d) => void delete d.placements[deploymentId])
      ctx.log.info({ deploymentId }, 'destroyed')
    }),
  )
}
