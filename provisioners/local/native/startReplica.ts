/**
 * Start one replica: its intent (port, cgroups, artifact) is recorded in the manifest before the process is spawned,
 * detached so it outlives the daemon, and its identity (pid, start time) right after.
 */
import { spawn } from 'node:child_process'
import { mkdir, open, rename, stat } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { faultPoint } from '../../../core/faults.js'
import { ProvisionError } from '../../errors.js'
import { writeManifest, type Manifest, type ReplicaRecord } from '../manifest.js'
import { readProcStat } from '../proc.js'
import { allocatePort, portFree } from './allocatePort.js'
import { verifiedCopy } from './artifact.js'
import { confine } from './confine.js'
import { DEPLOYMENT, OWNER, depDir, logFile, userOf, type LocalContext } from './context.js'
import { checkAborted } from './errors.js'
import { killCgroupMembers } from './stopReplicas.js'

// joins the cgroups first, then becomes the artifact: the artifact never runs outside its limits
const JOIN_AND_EXEC = 'a="$0"; for f in "$@"; do echo $$ > "$f" || exit 97; done; exec "$a"'
// the same, still as root (joining needs it and the workload must not be able to leave), then the privilege drop
// (the arguments after the cgroup files) execs the artifact: `sh -c ... <bin> <n> <procs files...> <setpriv argv...>`
const JOIN_DROP_AND_EXEC = 'a="$0"; n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit 97; shift; n=$((n-1)); done; exec "$@" "$a"'

/** Start replica `index` of `m` (its artifact already fetched); returns its record, written to the manifest. */
export async function startReplica(ctx: LocalContext, m: Manifest, index: number, signal: AbortSignal): Promise<ReplicaRecord> {
  const id = m.deploymentId
  const req = m.request
  if (!m.artifact) throw new ProvisionError('no verified artifact for this deployment', { code: 'ARTIFACT_MISSING', retryable: true })
  let rec = m.replicaRecords.find((r) => r.index === index)
  if (!rec) {
    rec = { index, port: 0 }
    m.replicaRecords.push(rec)
    m.replicaRecords.sort((a, b) => a.index - b.index)
  }
  if (!rec.port || !(await portFree(ctx, rec.port))) rec.port = await allocatePort(ctx, id, signal)
  else ctx.reserved.set(rec.port, id)
  const cg = await ctx.cgroups()
  let procs: string[] = []
  try {
    procs = await cg.prepare(id, index, { vcpu: req.spec.vcpu, memoryGiB: req.spec.memoryGiB, pidsMax: ctx.pidsMax })
  } catch (err) {
    ctx.log.warn({ err, deploymentId: id, replica: index }, 'cgroup setup failed; this replica runs without limits')
  }
  // the replica is not running: anything still in its cgroup is left from an earlier incarnation
  await killCgroupMembers(ctx, id, procs)
  rec.cgroups = procs
  rec.sha256 = m.artifact.sha256
  delete rec.pid
  delete rec.startTime
  checkAborted(signal, `start of ${id} replica ${index}`)
  await writeManifest(depDir(ctx, id), m)
  faultPoint('local.intent-recorded')
  checkAborted(signal, `start of ${id} replica ${index}`)

  const dataDir = join(depDir(ctx, id), 'data')
  const logPath = logFile(ctx, id, index)
  await mkdir(dataDir, { recursive: true })
  await mkdir(dirname(logPath), { recursive: true })
  const user = userOf(ctx, m)
  await confine(ctx, id, dataDir, dirname(logPath), user)
  const env: Record<string, string> = {
    // the daemon's own node first: native artifacts that are Node scripts run with the node that runs the daemon
    PATH: `${dirname(process.execPath)}:${process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'}`,
    HOME: dataDir,
    ...(req.env ?? {}),
    PORT: String(rec.port),
    HOST: ctx.host,
    SERVICE_ID: req.serviceId,
    BLUEPRINT_ID: req.blueprintId,
    DEPLOYMENT_ID: id,
    REPLICA_INDEX: String(index),
    DATA_DIR: dataDir,
    [OWNER]: ctx.operatorId,
    [DEPLOYMENT]: id,
  }
  const logSize = await stat(logPath).then((st) => st.size, () => 0)
  if (logSize > ctx.maxLogBytes) await rename(logPath, `${logPath}.1`)
  const out = await open(logPath, 'a', 0o640)
  let spawnError: Error | undefined
  let pid: number | undefined
  try {
    await out.write(`--- ${new Date().toISOString()} starting replica ${index} on port ${rec.port}\n`)
    const bin = await verifiedCopy(ctx, m, signal)
    const opts = { cwd: depDir(ctx, id), env, detached: true, stdio: ['ignore', out.fd, out.fd] as ['ignore', number, number] }
    // all uids and gids become the user's (so no way back to root), no supplementary groups, no gaining privileges
    const drop = user ? [user.setpriv, `--reuid=${user.uid}`, `--regid=${user.gid}`, '--clear-groups', '--no-new-privs', '--inh-caps=-all', '--'] : []
    const child = user
      ? procs.length
        ? spawn('/bin/sh', ['-c', JOIN_DROP_AND_EXEC, bin, String(procs.length), ...procs, ...drop], opts)
        : spawn(user.setpriv, [...drop.slice(1), bin], opts)
      : procs.length
        ? spawn('/bin/sh', ['-c', JOIN_AND_EXEC, bin, ...procs], opts)
        : spawn(bin, [], opts)
    child.on('error', (err) => (spawnError = err))
    child.unref()
    pid = child.pid
  } finally {
    await out.close()
  }
  await new Promise((r) => setImmediate(r))
  if (!pid || spawnError) {
    throw new ProvisionError(`replica ${index} of ${id} could not be started`, { code: 'PROVISION_FAILED', reason: 'PROVISION_FAILED', cause: spawnError })
  }
  ctx.m.started.inc()
  faultPoint('local.spawned-unrecorded')
  const st = await readProcStat(pid)
  rec.pid = pid
  // a process already gone gets an impossible start time, so it never matches anything alive
  rec.startTime = st?.startTime ?? 'exited'
  rec.startedAt = new Date().toISOString()
  await writeManifest(depDir(ctx, id), m)
  ctx.log.info({ deploymentId: id, replica: index, pid, port: rec.port, cgroups: procs.length > 0 }, 'replica started')
  return rec
}
