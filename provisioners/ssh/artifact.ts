/**
 * Native artifacts on a host: verified by sha256 at `<root>/artifacts/<sha256>`, uploaded from the daemon's cache or
 * downloaded by the host itself (`artifactTransfer`).
 */
import { randomBytes } from 'node:crypto'
import { lookup } from 'node:dns/promises'
import { isIP } from 'node:net'
import { hostRefused, isNonPublicAddress } from '../artifacts/addressPolicy.js'
import { fetchArtifact } from '../artifacts/fetchArtifact.js'
import { ProvisionError } from '../errors.js'
import type { DeploymentRequest } from '../types.js'
import type { SshContext } from './context.js'
import { RemoteCommandError } from './errors.js'
import type { HostFacts } from './hostAgent.js'
import type { SshHost } from './types.js'

/**
 * What can be checked of a URL the host itself downloads: a literal non-public address, and (best effort: the
 * host's resolver may answer otherwise) what the name resolves to here. Redirects curl follows on the host are not
 * checked; "upload" transfer checks every hop and every resolved address.
 */
export async function checkHostDownload(ctx: SshContext, url: URL): Promise<void> {
  ctx.addressPolicy.checkUrl(url)
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1')
  if (isIP(host) || ctx.addressPolicy.allows(host)) return
  const found = await lookup(host, { all: true }).catch(() => [])
  const bad = found.find((a) => isNonPublicAddress(a.address) && !ctx.addressPolicy.allows(a.address))
  if (bad) throw hostRefused(host, `it resolves to ${bad.address}, a loopback, private, link-local or reserved address`)
}

/** Put the verified artifact at `<root>/artifacts/<sha256>` on the host; returns its remote path. */
export async function installArtifact(ctx: SshContext, h: SshHost, req: DeploymentRequest, f: HostFacts, signal: AbortSignal): Promise<string> {
  const { agent, pool, maxArtifactBytes } = ctx
  const src = req.source
  if (src.kind === 'container') throw new TypeError('not a native source')
  const L = agent.layout(h)
  const remote = `${L.artifacts}/${src.sha256}`
  const check = await agent.run(h, ['artifact', L.root, src.sha256, 'check', '-'], { signal })
  if (check.code === 0) return remote
  let r
  if (ctx.transfer === 'host-download' && f.fetch !== 'none') {
    await checkHostDownload(ctx, new URL(src.url))
    r = await agent.run(h, ['artifact', L.root, src.sha256, 'download', src.url, String(maxArtifactBytes)], { signal, timeoutMs: 15 * 60_000 })
  } else {
    const local = await fetchArtifact(ctx.common, { url: src.url, sha256: src.sha256, cacheDir: ctx.cacheDir, allowHosts: ctx.artifactAllowHosts, maxBytes: maxArtifactBytes, signal })
    const tmp = `${L.artifacts}/.upload.${src.sha256}.${randomBytes(6).toString('hex')}`
    // the "check" call above created the artifacts dir
    await pool.upload(h, local.path, tmp, 0o600, { signal, timeoutMs: 15 * 60_000 }).catch(async (err: unknown) => {
      await pool.exec(h, ['rm', '-f', tmp], { timeoutMs: 10_000 }).catch(() => undefined)
      throw err
    })
    r = await agent.run(h, ['artifact', L.root, src.sha256, 'upload', tmp], { signal })
  }
  if (r.code === 0) return remote
  if (r.code === 20) throw new ProvisionError(`artifact sha256 mismatch on ${h.name}`, { reason: 'ARTIFACT_DIGEST_MISMATCH', code: 'ARTIFACT_DIGEST_MISMATCH', retryable: false, details: [r.stderr.trim().slice(0, 200)] })
  if (r.code === 21) throw new ProvisionError(`${h.name} could not download the artifact`, { reason: 'ARTIFACT_UNREACHABLE', code: 'ARTIFACT_UNREACHABLE', retryable: true })
  if (r.code === 25) throw new ProvisionError(`the artifact is above the ${maxArtifactBytes} byte cap`, { reason: 'ARTIFACT_UNREACHABLE', code: 'ARTIFACT_TOO_LARGE', retryable: false })
  throw new RemoteCommandError(h.name, 'installing the artifact', r.code, r.stderr)
}
