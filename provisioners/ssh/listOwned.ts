/**
 * Provisioner.listOwned: what this operator has on every reachable host (deployment dirs, running replicas, populated
 * cgroups, labelled containers), for the orphan sweep. Unreachable hosts are skipped with a warning; none reached fails.
 */
import { TargetUnreachableError } from '../errors.js'
import type { CallOptions, OwnedResource } from '../types.js'
import { ownedContainers } from './containers.js'
import { call, nameOf, type SshContext } from './context.js'
import { DEPLOYMENT_ID_RE } from './validate.js'

export function listOwned(ctx: SshContext, o?: CallOptions): Promise<OwnedResource[]> {
  const { agent } = ctx
  return call(ctx, 'listOwned', o, ctx.otherMs, async (signal) => {
    const out: OwnedResource[] = []
    let reached = 0
    let lastErr: unknown
    await Promise.all(
      [...ctx.hosts.values()].map(async (h) => {
        try {
          const deps = await agent.list(h, { signal })
          const f = await agent.facts(h, { signal })
          const groups = await agent.populatedCgroups(h, { signal })
          reached++
          const seen = new Set<string>()
          for (const d of deps) {
            if (d.owner !== ctx.operatorId) continue
            out.push({ deploymentId: d.deploymentId, kind: 'deployment-dir', id: `${h.name}:${agent.layout(h).dep(d.deploymentId)}`, placement: h.name })
            for (const r of d.replicas) {
              if (r.state !== 'running' && r.state !== 'restarting') continue
              const kind = r.mode === 'setsid' ? 'process' : r.mode.startsWith('systemd') ? 'unit' : 'container'
              seen.add(r.id)
              out.push({ deploymentId: d.deploymentId, kind, id: kind === 'process' ? `${h.name}:${r.id}` : r.id, placement: h.name })
            }
          }
          // processes that left their supervisor (and whose deployment dir may be gone) still sit in its cgroup
          const prefix = `bpo-${agent.layout(h).tag}-`
          for (const name of groups) {
            const id = name.startsWith(prefix) ? name.slice(prefix.length).replace(/-r\d+$/, '') : ''
            if (DEPLOYMENT_ID_RE.test(id) && name === nameOf(ctx, h, id, Number(name.slice(name.lastIndexOf('-r') + 2)))) {
              out.push({ deploymentId: id, kind: 'cgroup', id: `${h.name}:${name}`, placement: h.name })
            }
          }
          if (f.runtime !== 'none') {
            for (const c of await ownedContainers(ctx, h, f.runtime, undefined, signal)) {
              if (!seen.has(c.name)) out.push({ deploymentId: c.deploymentId, kind: 'container', id: c.name, placement: h.name })
            }
          }
        } catch (err) {
          if (!(err instanceof TargetUnreachableError)) throw err
          lastErr = err
          ctx.log.warn({ host: h.name }, 'listOwned: host unreachable, its resources are not listed')
        }
      }),
    )
    if (!reached && lastErr) throw lastErr
    return out.sort((a, b) => (a.deploymentId + a.kind + a.id < b.deploymentId + b.kind + b.id ? -1 : 1))
  })
}
