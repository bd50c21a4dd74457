/** Where a deployment is: the ledger first, else the hosts' manifests (a daemon that lost its state dir adopts them). */
import { TargetUnreachableError } from '../errors.js'
import { hostOf, type SshContext } from './context.js'
import type { RemoteStatus } from './hostAgent.js'
import { fromManifest } from './manifest.js'
import type { Placement, SshHost } from './types.js'

export type Located = { host: SshHost; placement: Placement; remote: RemoteStatus }

/**
 * Find the deployment: the ledger first, else every host (a daemon that lost its state dir). Throws
 * TargetUnreachableError when some host could not be asked and none had it.
 */
export async function locate(ctx: SshContext, id: string, signal: AbortSignal, pinned?: string): Promise<Located | undefined> {
  const { agent, hosts } = ctx
  const known = ctx.ledger.get(id)
  if (known) {
    const h = hostOf(ctx, known)
    return { host: h, placement: known, remote: await agent.status(h, id, { signal }) }
  }
  let unreachable: unknown
  // a request pinned to a known host is looked for there only (a cloud VM holds exactly its own deployment)
  const where = pinned !== undefined && hosts.has(pinned) ? [hosts.get(pinned)!] : [...hosts.values()]
  const found = await Promise.all(
    where.map(async (h) => {
      try {
        const remote = await agent.status(h, id, { signal })
        if (!remote.present) return undefined
        const placement = fromManifest(ctx, h, remote.manifest, remote.replicas)
        return placement ? { host: h, placement, remote } : undefined
      } catch (err) {
        if (!(err instanceof TargetUnreachableError)) throw err
        unreachable = err
        return undefined
      }
    }),
  )
  const hit = found.find((x) => x !== undefined)
  if (hit) return hit
  if (unreachable) throw unreachable
  return undefined
}

/** Record a placement found on a host (after a lost state dir) in the ledger. */
export async function adopt(ctx: SshContext, pl: Placement): Promise<Placement> {
  if (ctx.ledger.get(pl.deploymentId)) return ctx.ledger.get(pl.deploymentId)!
  ctx.log.info({ deploymentId: pl.deploymentId, host: pl.host }, 'adopting a deployment found on its host')
  return ctx.ledger.update((d) => (d.placements[pl.deploymentId] = pl))
}
