/** Hand a replica a PORT: free on the host, recorded by no manifest in the root, not reserved by this daemon. */
import { readdir } from 'node:fs/promises'
import { createServer } from 'node:net'
import { ProvisionError } from '../../errors.js'
import { readManifest } from '../manifest.js'
import { depDir, type LocalContext } from './context.js'
import { checkAborted } from './errors.js'

/** True when nothing listens on `port` at the replicas' host (checked by binding it exclusively). */
export async function portFree(ctx: LocalContext, port: number): Promise<boolean> {
  const srv = createServer()
  return new Promise<boolean>((resolve) => {
    srv.once('error', () => resolve(false))
    srv.listen({ port, host: ctx.host, exclusive: true }, () => srv.close(() => resolve(true)))
  })
}

/** A free port of the range, from a random start, reserved for `id`; NO_FREE_PORT (retryable) when none is left. */
export async function allocatePort(ctx: LocalContext, id: string, signal: AbortSignal): Promise<number> {
  const [portLo, portHi] = ctx.portRange
  const taken = new Set<number>(ctx.reserved.keys())
  for (const name of await readdir(ctx.deploymentsDir).catch(() => [] as string[])) {
    const m = await readManifest(depDir(ctx, name)).catch(() => undefined)
    for (const r of m?.replicaRecords ?? []) taken.add(r.port)
  }
  const span = portHi - portLo + 1
  const start = Math.floor(Math.random() * span)
  for (let k = 0; k < span; k++) {
    if (k % 64 === 0) checkAborted(signal, 'port allocation')
    const port = portLo + ((start + k) % span)
    if (taken.has(port)) continue
    if (await portFree(ctx, port)) {
      ctx.reserved.set(port, id)
      return port
    }
  }
  throw new ProvisionError(`no free port in ${portLo}-${portHi}`, { code: 'NO_FREE_PORT', retryable: true })
}
