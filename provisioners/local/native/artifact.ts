/** The artifact a deployment runs: fetched into the shared cache, then copied, verified and locked down per deployment. */
import { randomBytes } from 'node:crypto'
import { chmod, chown, copyFile, mkdir, rename, rm } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fetchArtifact } from '../../artifacts/fetchArtifact.js'
import { sha256File } from '../../artifacts/sha256File.js'
import { ProvisionError } from '../../errors.js'
import type { Manifest } from '../manifest.js'
import { depDir, userOf, type LocalContext } from './context.js'
import type { WorkloadUser } from './workloadUser.js'

/** Fetch (or find in the cache, verified) the artifact `m` asks for, and record it in `m.artifact`. */
export async function ensureArtifact(ctx: LocalContext, m: Manifest, signal: AbortSignal): Promise<void> {
  const src = m.request.source
  if (src.kind === 'container') throw new ProvisionError('the local target cannot run container sources', { code: 'SOURCE_KIND_UNSUPPORTED' })
  const a = await fetchArtifact(ctx.common, { url: src.url, sha256: src.sha256, cacheDir: ctx.cacheDir, timeoutMs: ctx.downloadTimeoutMs, maxBytes: ctx.maxArtifactBytes, allowHosts: ctx.artifactAllowHosts, signal })
  m.artifact = { sha256: a.sha256, path: a.path }
}

/**
 * The deployment's own read-only copy of its artifact (`bin/<sha256>`), hashed right before it is spawned: the
 * shared cache (writable by anything running as this user, a stopping replica included) is only ever copied from
 * after it verified, and a copy that no longer matches is made again from freshly verified bytes.
 */
export async function verifiedCopy(ctx: LocalContext, m: Manifest, signal: AbortSignal): Promise<string> {
  const a = m.artifact!
  const dest = join(depDir(ctx, m.deploymentId), 'bin', a.sha256)
  if ((await sha256File(dest, signal).catch(() => undefined)) === a.sha256) {
    await lockDown(dest, userOf(ctx, m))
    return dest
  }
  await mkdir(dirname(dest), { recursive: true, mode: 0o700 })
  for (let attempt = 0; attempt < 2; attempt++) {
    // fetchArtifact re-verifies the cache entry and fetches again when it was modified
    await ensureArtifact(ctx, m, signal)
    const tmp = `${dest}.${randomBytes(4).toString('hex')}.tmp`
    try {
      await copyFile(m.artifact!.path, tmp)
      await chmod(tmp, 0o500)
      if ((await sha256File(tmp, signal)) === a.sha256) {
        await lockDown(tmp, userOf(ctx, m))
        await rename(tmp, dest)
        return dest
      }
    } finally {
      await rm(tmp, { force: true })
    }
    ctx.log.warn({ deploymentId: m.deploymentId, path: m.artifact!.path }, 'cached artifact changed after it was verified; fetching it again')
  }
  throw new ProvisionError(`the artifact of ${m.deploymentId} keeps changing after verification`, { code: 'ARTIFACT_MODIFIED', reason: 'PROVISION_FAILED', retryable: true, meta: { deploymentId: m.deploymentId } })
}

/**
 * With a workload user, the copy it runs stays root's and read-only, readable and executable by the user's group
 * only (a script artifact is read by its interpreter), in a directory it can traverse but not list or write.
 */
export async function lockDown(bin: string, user: WorkloadUser | undefined): Promise<void> {
  if (!user) return
  await chown(bin, 0, user.gid)
  await chmod(bin, 0o550)
  await chmod(dirname(bin), 0o711)
}
