/** `Provisioner.listOwned`: everything of this operator on this host, for the orphan sweep. */
import { readdir } from 'node:fs/promises'
import type { CallOptions, OwnedResource } from '../../types.js'
import { readManifest } from '../manifest.js'
import { call, depDir, DEPLOYMENT_ID, type LocalContext } from './context.js'
import { scan } from './discover.js'
import { checkAborted } from './errors.js'

/** Marked processes, populated cgroups and deployment directories of this operator, each with its deployment id. */
export function listOwned(ctx: LocalContext, o?: CallOptions): Promise<OwnedResource[]> {
  return call(ctx, 'local listOwned', ctx.shortCallMs, o, async (signal) => {
    const out: OwnedResource[] = []
    for (const proc of await scan(ctx, undefined, signal)) out.push({ deploymentId: proc.deploymentId, kind: 'process', id: String(proc.pid), placement: ctx.placement })
    // processes that cleared their environment are found by the cgroup they cannot leave
    for (const g of await (await ctx.cgroups()).populated()) {
      if (DEPLOYMENT_ID.test(g.deploymentId)) out.push({ deploymentId: g.deploymentId, kind: 'cgroup', id: g.dir, placement: ctx.placement })
    }
    for (const name of await readdir(ctx.deploymentsDir).catch(() => [] as string[])) {
      checkAborted(signal, 'local listOwned')
      const m = await readManifest(depDir(ctx, name)).catch(() => undefined)
      if (m?.operatorId === ctx.operatorId) out.push({ deploymentId: m.deploymentId, kind: 'deployment-dir', id: depDir(ctx, name), placement: ctx.placement })
    }
    return out
  })
}
