/**
 * Is a grid VM up? A VM with a public IP is ready once its first port accepts TCP: provision waits for that after a
 * deploy (the node fetches the flist and boots the VM), and status probes it.
 */
import { connect } from 'node:net'
import { AbortedError } from '../../core/errors.js'
import { sleep } from '../../core/retry.js'
import { ProvisionError } from '../errors.js'
import type { DeploymentRequest } from '../types.js'
import type { Replica, ThreefoldContext } from './context.js'

/** Whether `host:port` accepts a TCP connection within `timeoutMs`. */
export function tcpAnswers(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ host, port })
    const done = (ok: boolean) => {
      sock.destroy()
      resolve(ok)
    }
    sock.setTimeout(timeoutMs, () => done(false))
    sock.once('connect', () => done(true))
    sock.once('error', () => done(false))
  })
}

/** Names of the replicas of `id` whose VM accepts TCP on the first port (all of them when there is no port or public IP). */
export async function answeringReplicas(ctx: ThreefoldContext, id: string): Promise<Set<string>> {
  const e = ctx.state[id]
  const port = e?.request.spec.ports[0]
  const out = new Set<string>()
  await Promise.all(
    (e?.replicas ?? []).map(async (r) => {
      if (!port || !r.publicIp || (await tcpAnswers(r.publicIp, port, ctx.p.probeTimeoutMs ?? 3_000))) out.add(r.name)
    }),
  )
  return out
}

/** Wait until a new VM answers on its first port; UNHEALTHY (retryable) after `bootTimeoutMs` (default 10 min). */
export async function waitBooted(ctx: ThreefoldContext, req: DeploymentRequest, r: Replica, signal: AbortSignal | undefined): Promise<void> {
  const port = req.spec.ports[0]
  if (!port || !r.publicIp) return
  const timeoutMs = ctx.p.bootTimeoutMs ?? 600_000
  const deadline = ctx.now() + timeoutMs
  while (!(await tcpAnswers(r.publicIp, port, ctx.p.probeTimeoutMs ?? 3_000))) {
    if (signal?.aborted) throw new AbortedError('threefold boot wait', signal.reason)
    if (ctx.now() > deadline) throw new ProvisionError(`grid VM ${r.name} did not answer on ${r.publicIp}:${port} within ${timeoutMs} ms`, { code: 'UNHEALTHY', reason: 'UNHEALTHY', retryable: true, meta: { nodeId: r.nodeId } })
    await sleep(1_000, signal).catch(() => {})
  }
  ctx.log.info({ name: r.name, nodeId: r.nodeId, address: `${r.publicIp}:${port}` }, 'grid VM answers')
}
