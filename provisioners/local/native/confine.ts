/** Hand a deployment's data dir to its workload user and close everything around it. */
import { chmod, lchown, lstat, readdir, stat } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { ProvisionError } from '../../errors.js'
import { depDir, type LocalContext } from './context.js'
import type { WorkloadUser } from './workloadUser.js'

/**
 * With a workload user: the data dir becomes the user's, everything around it stays root's and closed (the
 * deployment dirs traversable only, the logs' dir private: the replica only gets its log's descriptor).
 */
export async function confine(ctx: LocalContext, id: string, dataDir: string, logsDir: string, user: WorkloadUser | undefined): Promise<void> {
  if (!user) return
  // with a uid per deployment, nothing above the deployments is listable, and the artifact cache is the daemon's
  if (ctx.uidRange) {
    await chmod(ctx.rootDir, 0o711)
    await chmod(ctx.cacheDir, 0o700).catch(() => undefined)
  }
  await chmod(ctx.deploymentsDir, 0o711)
  await chmod(depDir(ctx, id), 0o711)
  await chmod(logsDir, 0o700)
  const st = await lstat(dataDir)
  if (!st.isDirectory()) throw new ProvisionError(`${dataDir} is not a directory`, { code: 'PROVISION_FAILED', reason: 'PROVISION_FAILED', meta: { deploymentId: id } })
  if (st.uid !== user.uid || st.gid !== user.gid) {
    // files the daemon's own user left there (replicas run before workloadUser was set) become the user's; a tree
    // of another unprivileged user is not walked: it could swap a directory for a link while we walk it
    if (st.uid === process.getuid?.()) await chownTree(dataDir, user.uid, user.gid)
    else {
      ctx.log.warn({ deploymentId: id, dataDir, owner: st.uid }, 'data dir belongs to another user; only the directory itself is handed over')
      await lchown(dataDir, user.uid, user.gid)
    }
  }
  await chmod(dataDir, 0o700)
  // every directory above the data dir must let the user through, or the replica could not even start
  for (let dir = dirname(dataDir); ; dir = dirname(dir)) {
    const d = await stat(dir)
    const ok = d.mode & 0o001 || (d.gid === user.gid && d.mode & 0o010) || (d.uid === user.uid && d.mode & 0o100)
    if (!ok) {
      throw new ProvisionError(`workload user ${user.name} cannot reach ${dataDir}: ${dir} (mode ${(d.mode & 0o777).toString(8)}) is not searchable by it`, {
        code: 'CONFIG_INVALID',
        meta: { deploymentId: id },
      })
    }
    if (dir === dirname(dir)) break
  }
}

/** chown a tree without following symbolic links (whatever the workload linked there stays untouched). */
async function chownTree(path: string, uid: number, gid: number): Promise<void> {
  const st = await lstat(path)
  await lchown(path, uid, gid)
  if (!st.isDirectory()) return
  for (const name of await readdir(path)) await chownTree(join(path, name), uid, gid)
}
