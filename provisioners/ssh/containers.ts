/** Container images and containers on a host, through its runtime (podman or docker; the rules of container/rules.ts). */
import { classifyPullFailure, imageHasDigest } from '../container/inspect.js'
import { imageRef, ownerFilter } from '../container/rules.js'
import { ProvisionError } from '../errors.js'
import type { DeploymentRequest } from '../types.js'
import type { SshContext } from './context.js'
import { RemoteCommandError } from './errors.js'
import type { ReplicaMode, SshHost } from './types.js'

/** Pull `<image>@<digest>` on `h` and check the stored image carries the digest (the rules of container/rules.ts). */
export async function pullImage(ctx: SshContext, h: SshHost, runtime: ReplicaMode, src: Extract<DeploymentRequest['source'], { kind: 'container' }>, signal: AbortSignal): Promise<void> {
  const ref = imageRef(src)
  const r = await ctx.pool.exec(h, [runtime, 'pull', ref], { signal, timeoutMs: 15 * 60_000 })
  if (r.code !== 0) {
    const f = classifyPullFailure(r.stderr)
    if (f.kind === 'digest-unknown') throw new ProvisionError(`the registry has no image ${ref}`, { reason: 'ARTIFACT_DIGEST_MISMATCH', code: 'ARTIFACT_DIGEST_MISMATCH', retryable: false, details: [f.detail], meta: { host: h.name } })
    throw new ProvisionError(`${h.name} could not pull ${ref}`, { reason: 'ARTIFACT_UNREACHABLE', code: 'ARTIFACT_UNREACHABLE', retryable: f.kind !== 'denied', details: [f.detail], meta: { host: h.name } })
  }
  const got = await ctx.pool.exec(h, [runtime, 'image', 'inspect', ref], { signal })
  if (got.code !== 0 || !imageHasDigest(got.stdout, src.image, src.digest)) {
    throw new ProvisionError(`the image pulled on ${h.name} does not carry digest ${src.digest}`, { reason: 'ARTIFACT_DIGEST_MISMATCH', code: 'ARTIFACT_DIGEST_MISMATCH', retryable: false, meta: { host: h.name } })
  }
}

/** Containers on `h` labelled with this operator (and this host root), optionally of one deployment. */
export async function ownedContainers(ctx: SshContext, h: SshHost, runtime: 'podman' | 'docker', deploymentId: string | undefined, signal: AbortSignal) {
  const L = ctx.agent.layout(h)
  const argv = [runtime, 'ps', '-a', ...ownerFilter({ operatorId: ctx.operatorId, tag: L.tag, ...(deploymentId && { deploymentId }) }), '--format', '{{.Names}}']
  const r = await ctx.pool.exec(h, argv, { signal })
  if (r.code !== 0) throw new RemoteCommandError(h.name, 'listing containers', r.code, r.stderr)
  const prefix = `bpo-${L.tag}-`
  return r.stdout
    .split('\n')
    .map((n) => n.trim())
    .filter((n) => n.startsWith(prefix))
    .map((name) => ({ name, deploymentId: name.slice(prefix.length).replace(/-r\d+$/, '') }))
}

/** Remove every container of one deployment on `h` (running or not). */
export async function removeContainers(ctx: SshContext, h: SshHost, runtime: 'podman' | 'docker', deploymentId: string, signal: AbortSignal) {
  const names = (await ownedContainers(ctx, h, runtime, deploymentId, signal)).map((c) => c.name)
  if (!names.length) return
  const r = await ctx.pool.exec(h, [runtime, 'rm', '-f', ...names], { signal })
  if (r.code !== 0) throw new RemoteCommandError(h.name, 'removing containers', r.code, r.stderr)
}
