/**
 * CPU counters of a deployment's replicas on an SSH host, through the host agent's read-only `usage` command (each
 * running replica's cgroup: v1 cpuacct.usage, v2 cpu.stat usage_usec).
 */
import type { DeploymentUsage, ReplicaUsage } from '../types.js'
import type { ExecOptions } from './connection.js'
import type { HostAgent } from './hostAgent.js'
import type { SshHost } from './types.js'

/** Parse the agent's `cpu <index> <pid>:<starttime> <usec>` lines; other lines are ignored. */
export function parseHostUsage(text: string): ReplicaUsage[] {
  const out: ReplicaUsage[] = []
  for (const line of text.split('\n')) {
    const m = /^cpu (\d{1,4}) (\d{1,10}:\d{1,20}) (\d{1,20})$/.exec(line.trim())
    if (m) out.push({ index: Number(m[1]), id: m[2]!, cpuSeconds: Number(m[3]) / 1e6 })
  }
  return out.sort((a, b) => a.index - b.index)
}

/** Read the counters of the deployment in `depDir` on `host`, keeping replicas below `wanted`; undefined when none. */
export async function readHostUsage(agent: HostAgent, host: SshHost, depDir: string, wanted: number, o: ExecOptions = {}): Promise<DeploymentUsage | undefined> {
  const at = Date.now()
  const replicas = parseHostUsage(await agent.must(host, 'reading CPU counters', ['usage', depDir], o)).filter((r) => r.index < wanted)
  return replicas.length ? { at, replicas } : undefined
}
