/**
 * `Provisioner.destroy`: stop every process of the deployment (by manifest, by markers, by cgroup), remove its
 * cgroups and its directory. Already gone is success; another operator's directory in a shared root is left alone.
 */
import { rm, rmdir } from 'node:fs/promises'
import { dirname } from 'node:path'
import { ProvisionError } from '../../errors.js'
import type { CallOptions } from '../../types.js'
import { readManifest } from '../manifest.js'
import { call, depDir, locked, type LocalContext } from './context.js'
import { discover, scan } from './discover.js'
import { killCgroupMembers, stopReplicas } from './stopReplicas.js'
import { validateId } from './validate.js'

/** Destroy deployment `id` on this host; STOP_FAILED (retryable) when a process survives SIGKILL. */
export function destroy(ctx: LocalContext, id: string, o?: CallOptions): Promise<void> {
  return call(ctx, `local destroy ${id}`, 2 * ctx.stopGraceMs + 30_000 + ctx.shortCallMs, o, async (signal) => {
    validateId(id)
    return locked(ctx, id, signal, async () => {
      const found = await readManifest(depDir(ctx, id))
      // a directory another operator wrote (a shared rootDir) is not ours to remove; its processes are skipped too
      const m = found?.operatorId === ctx.operatorId ? found : undefined
      const { byIndex, strays } = await discover(ctx, id, m, signal)
      await stopReplicas(ctx, m, [...byIndex.values(), ...strays])
      // children that left the replica's group still carry the markers
      const left = await scan(ctx, id, signal)
      await stopReplicas(ctx, m, left.map((l) => ({ pid: l.pid, startTime: l.startTime, pgrp: l.pgrp })))
      const cg = await ctx.cgroups()
      // whatever left the replicas' process groups and sessions (and dropped the markers) is still in their cgroups
      for (const r of m?.replicaRecords ?? []) await killCgroupMembers(ctx, id, r.cgroups)
      // this operator's own cgroup level: also what no manifest names any more
      const survivors = await cg.killDeployment(id)
      if (survivors.length) throw new ProvisionError(`processes ${survivors.join(', ')} of ${id} survived SIGKILL`, { code: 'STOP_FAILED', retryable: true, meta: { deploymentId: id } })
      for (const r of m?.replicaRecords ?? []) {
        await cg.remove(r.cgroups ?? [])
        // cgroups made by an earlier daemon may sit under another base; drop their deployment level too
        for (const f of r.cgroups ?? []) await rmdir(dirname(dirname(f))).catch(() => undefined)
      }
      await cg.removeDeployment(id)
      for (const [port, owner] of ctx.reserved) if (owner === id) ctx.reserved.delete(port)
      if (!found || m) await rm(depDir(ctx, id), { recursive: true, force: true })
      if (m || byIndex.size || strays.length) ctx.log.info({ deploymentId: id }, 'deployment destroyed')
    })
  })
}
