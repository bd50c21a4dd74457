/**
 * The manifest a deployment's directory holds on its host: the placement as recorded by this target, so a daemon that
 * lost its state dir finds and adopts what it placed. Read back with the distrust due to a file the workload can write.
 */
import { inUidRange } from '../../core/workloadUids.js'
import { DEFAULT_PORTS, uidRangeOf, unitOf, type SshContext } from './context.js'
import type { ReplicaState } from './hostAgent.js'
import type { Placement, Resources, SshHost } from './types.js'
import { requestProblems } from './validate.js'

/** The placement recorded in a host's manifest (written by this target), or undefined when it is not one. */
export function fromManifest(ctx: SshContext, h: SshHost, m: unknown, replicas: ReplicaState[]): Placement | undefined {
  const x = m as Partial<Placement> & { owner?: string }
  if (!x || typeof x !== 'object' || x.owner !== ctx.operatorId || typeof x.deploymentId !== 'string' || !x.request || !x.unit) return undefined
  // what comes back from a host is checked like a new request before anything is built from it
  if (requestProblems(x.request).length || x.request.deploymentId !== x.deploymentId) {
    ctx.log.warn({ host: h.name, deploymentId: x.deploymentId }, 'ignoring a malformed manifest on the host')
    return undefined
  }
  // the manifest sits in a directory the workload can write: everything that reserves capacity or ports is
  // checked against the request and the host's configuration before it reaches the ledger
  const problems: string[] = []
  const unit = unitOf(x.request)
  const u = x.unit as Partial<Resources>
  if (u.vcpu !== unit.vcpu || u.memoryGiB !== unit.memoryGiB || u.storageGiB !== unit.storageGiB) problems.push(`unit: got ${JSON.stringify(x.unit)}, expected the request's ${JSON.stringify(unit)}`)
  const kind = x.request.source.kind === 'container' ? 'container' : 'native'
  if (x.kind !== undefined && x.kind !== kind) problems.push(`kind: got ${JSON.stringify(x.kind)}, expected ${kind}`)
  const count = (v: unknown) => (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 1000 ? v : undefined)
  const n = count(x.replicas ?? 0)
  const data = count(x.dataReplicas ?? x.replicas ?? 0)
  if (n === undefined) problems.push(`replicas: got ${JSON.stringify(x.replicas)}, expected an integer 0..1000`)
  if (data === undefined || (n !== undefined && data < n)) problems.push(`dataReplicas: got ${JSON.stringify(x.dataReplicas)}, expected an integer >= replicas, <= 1000`)
  const range = h.ports ?? DEFAULT_PORTS
  const inRange = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= range.from && v <= range.to
  // ports the host's replica dirs record win over an older manifest
  const ports: Record<string, number> = {}
  const raw: unknown = x.ports ?? {}
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) problems.push('ports: expected an object')
  else
    for (const [k, v] of Object.entries(raw)) {
      if (!/^\d{1,4}$/.test(k) || Number(k) >= 1000 || !inRange(v)) problems.push(`ports.${k}: got ${JSON.stringify(v)}, expected a replica index and a port in ${range.from}..${range.to}`)
      else ports[String(Number(k))] = v
    }
  for (const r of replicas) {
    if (r.port <= 0) continue
    if (inRange(r.port)) ports[String(r.index)] = r.port
    else problems.push(`replica ${r.index}: port ${r.port} outside ${range.from}..${range.to}`)
  }
  if (new Set(Object.values(ports)).size !== Object.values(ports).length) problems.push('ports: one port given to two replicas')
  if (problems.length || n === undefined || data === undefined) {
    ctx.log.warn({ host: h.name, deploymentId: x.deploymentId, problems }, 'ignoring a manifest on the host that does not match its request or the host')
    return undefined
  }
  return {
    deploymentId: x.deploymentId,
    host: h.name,
    kind,
    request: x.request,
    unit,
    replicas: n,
    dataReplicas: data,
    ports,
    // a uid outside the host's range is dropped (a new one is assigned before any start); duplicates are caught there
    ...(uidRangeOf(h) && inUidRange(x.uid, uidRangeOf(h)!) && { uid: x.uid }),
    createdAt: typeof x.createdAt === 'string' && !Number.isNaN(Date.parse(x.createdAt)) ? x.createdAt : new Date().toISOString(),
  }
}

/** Write `pl` as the deployment's manifest on `h`. */
export async function writeManifest(ctx: SshContext, h: SshHost, pl: Placement, signal: AbortSignal) {
  const body = JSON.stringify({ version: 1, owner: ctx.operatorId, ...pl, updatedAt: new Date().toISOString() })
  await ctx.agent.must(h, 'writing the deployment manifest', ['manifest', ctx.agent.layout(h).dep(pl.deploymentId), ctx.operatorId], { signal, stdin: body })
}
