/** Give a deployment its own workload uid from `workloadUids`, once, one deployment at a time. */
import { readdir } from 'node:fs/promises'
import { chooseWorkloadUid, inUidRange } from '../../../core/workloadUids.js'
import { ProvisionError } from '../../errors.js'
import { readManifest, writeManifest, type Manifest } from '../manifest.js'
import { depDir, type LocalContext } from './context.js'

/** Give the deployment its own uid from the range (once: a recorded uid inside the range is kept for good). */
export async function assignUid(ctx: LocalContext, m: Manifest): Promise<void> {
  const range = ctx.uidRange
  if (!range || inUidRange(m.uid, range)) return
  // choosing a uid is one step across deployments: reading every manifest's uid and recording this one
  const run = ctx.uidLock.then(async () => {
    const taken = new Set<number>()
    for (const name of await readdir(ctx.deploymentsDir).catch(() => [] as string[])) {
      if (name === m.deploymentId) continue
      // every manifest in the root counts, another operator's included
      const other = await readManifest(depDir(ctx, name)).catch(() => undefined)
      if (typeof other?.uid === 'number') taken.add(other.uid)
    }
    const uid = chooseWorkloadUid(`${ctx.operatorId}\0${m.deploymentId}`, range, taken)
    if (uid === undefined) {
      throw new ProvisionError(`every workload uid of [${range.join(', ')}] is held by another deployment`, {
        code: 'NO_FREE_UID',
        reason: 'NO_FEASIBLE_OFFER',
        retryable: true,
        meta: { deploymentId: m.deploymentId },
      })
    }
    if (m.uid !== undefined) ctx.log.warn({ deploymentId: m.deploymentId, was: m.uid, uid }, 'recorded workload uid is outside the configured range; assigning a new one')
    m.uid = uid
    await writeManifest(depDir(ctx, m.deploymentId), m)
    ctx.log.info({ deploymentId: m.deploymentId, uid }, 'workload uid assigned')
  })
  ctx.uidLock = run.catch(() => undefined)
  await run
}
