/** Stop replica processes: SIGTERM to the replica's group, SIGKILL after the grace period; and what hides in cgroups. */
import { sleep } from '../../../core/retry.js'
import { ProvisionError } from '../../errors.js'
import type { Manifest } from '../manifest.js'
import { isSameProcess, readProcStat } from '../proc.js'
import type { Live, LocalContext } from './context.js'

/** Stop `procs` (all at once) and free the ports they held for `m`'s deployment. */
export async function stopReplicas(ctx: LocalContext, m: Manifest | undefined, procs: Live[]): Promise<void> {
  await Promise.all(procs.map((l) => stopProcess(ctx, l)))
  ctx.m.stopped.inc({}, procs.length)
  if (m) for (const l of procs) for (const [port, owner] of ctx.reserved) if (owner === m.deploymentId && port === l.port) ctx.reserved.delete(port)
}

/** SIGTERM, then SIGKILL after `stopGraceMs`; STOP_FAILED (retryable) when the process survives even that. */
export async function stopProcess(ctx: LocalContext, proc: { pid: number; startTime: string }): Promise<void> {
  const send = async (sig: NodeJS.Signals) => {
    if (!(await isSameProcess(proc.pid, proc.startTime))) return false
    const st = await readProcStat(proc.pid)
    try {
      // signal the whole group only when it is the replica's own group
      process.kill(st?.pgrp === proc.pid ? -proc.pid : proc.pid, sig)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err
    }
    return true
  }
  if (!(await send('SIGTERM'))) return
  const gone = async (ms: number) => {
    const end = Date.now() + ms
    while (Date.now() < end) {
      if (!(await isSameProcess(proc.pid, proc.startTime))) return true
      await sleep(50)
    }
    return !(await isSameProcess(proc.pid, proc.startTime))
  }
  if (await gone(ctx.stopGraceMs)) return
  ctx.log.warn({ pid: proc.pid, graceMs: ctx.stopGraceMs }, 'replica ignored SIGTERM; sending SIGKILL')
  await send('SIGKILL')
  if (!(await gone(10_000))) throw new ProvisionError(`process ${proc.pid} survived SIGKILL`, { code: 'STOP_FAILED', retryable: true })
}

/** SIGKILL whatever is still in these cgroups: children that left the replica's process group or session. */
export async function killCgroupMembers(ctx: LocalContext, id: string, procsFiles: string[] | undefined): Promise<void> {
  if (!procsFiles?.length) return
  const left = await (await ctx.cgroups()).kill(procsFiles)
  if (left.length) throw new ProvisionError(`processes ${left.join(', ')} of ${id} survived SIGKILL`, { code: 'STOP_FAILED', retryable: true, meta: { deploymentId: id } })
}
