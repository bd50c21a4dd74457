/**
 * The hosts the SSH target knows: the configured list, checked at start, and hosts handed over or taken away at run
 * time (a cloud target's VMs boot, stop, come back with a new address, are deleted).
 */
import { uidRangeProblems } from '../../core/workloadUids.js'
import { parsePinnedKey } from './connection.js'
import { DEFAULT_PORTS, type SshContext } from './context.js'
import type { SshHost } from './types.js'
import { HOST_NAME_RE } from './validate.js'

/** Problems of one host's settings (empty when it is usable). */
export function hostProblems(h: SshHost): string[] {
  const problems: string[] = []
  if (!HOST_NAME_RE.test(h.name)) problems.push(`name: got ${JSON.stringify(h.name)}`)
  if (!Number.isInteger(h.port) || h.port < 1 || h.port > 65535) problems.push(`port: got ${h.port}`)
  try {
    parsePinnedKey(h.hostKey)
  } catch (err) {
    problems.push(`hostKey: ${(err as Error).message}`)
  }
  if (h.workloadUser !== undefined && !/^[a-z_][a-z0-9_-]{0,31}$/.test(h.workloadUser)) problems.push(`workloadUser: got ${JSON.stringify(h.workloadUser)}, expected a POSIX user name`)
  if (h.workloadUids !== undefined) {
    const bad = uidRangeProblems([h.workloadUids.from, h.workloadUids.to])
    if (bad.length) problems.push(`workloadUids: ${bad.join('; ')}`)
    if (h.workloadUser !== undefined) problems.push('workloadUser and workloadUids exclude each other')
  }
  const r = h.ports ?? DEFAULT_PORTS
  if (!Number.isInteger(r.from) || !Number.isInteger(r.to) || r.from < 1024 || r.to > 65535 || r.from > r.to) problems.push(`ports: got ${r.from}..${r.to}`)
  return problems
}

/** The configured hosts by name; throws TypeError on the first invalid or duplicate one. */
export function configuredHosts(list: readonly SshHost[]): Map<string, SshHost> {
  const hosts = new Map<string, SshHost>()
  for (const h of list) {
    const problems = hostProblems(h)
    if (hosts.has(h.name)) problems.push('duplicate name')
    if (problems.length) throw new TypeError(`ssh host ${JSON.stringify(h.name)}: ${problems.join('; ')}`)
    hosts.set(h.name, h)
  }
  return hosts
}

/**
 * Take a host at run time. One of the same name is replaced (its cached connection and facts dropped); an identical
 * one is left as it is. Throws TypeError when invalid.
 */
export function addHost(ctx: SshContext, h: SshHost): void {
  const problems = hostProblems(h)
  if (problems.length) throw new TypeError(`ssh host ${JSON.stringify(h.name)}: ${problems.join('; ')}`)
  const old = ctx.hosts.get(h.name)
  if (old && JSON.stringify(old) === JSON.stringify(h)) return
  if (old) ctx.pool.drop(h.name)
  ctx.hosts.set(h.name, h)
  ctx.agent.forget(h.name)
  ctx.agent.layout(h)
}

/** Forget a host at run time: its connection, its facts and the ledger's placements on it (its disk is left as is). */
export async function removeHost(ctx: SshContext, name: string): Promise<void> {
  if (!ctx.hosts.has(name)) return
  ctx.hosts.delete(name)
  ctx.pool.drop(name)
  ctx.agent.forget(name)
  if (ctx.ledger.all().some((pl) => pl.host === name)) {
    await ctx.ledger.update((d) => {
      for (const [id, pl] of Object.entries(d.placements)) if (pl.host === name) delete d.placements[id]
    })
  }
}

export const hostNames = (ctx: SshContext): string[] => [...ctx.hosts.keys()]
