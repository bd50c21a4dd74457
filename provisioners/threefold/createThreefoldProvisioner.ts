/**
 * The ThreeFold Grid as a target: one Zero-OS VM per replica, deployed by the grid worker child (grid_client), named
 * `<deploymentId>-r<i>` so `listOwned` finds the twin's contracts by name. Before deploying: node choice among the
 * catalog's offers (chooseNode) and the TFT runway check (checkRunway). A node whose deployment fails with a
 * capacity error is skipped for `nodeCooldownMs` and the next node is tried.
 *
 * scale(0) cancels the VM contracts: on the grid a VM's disks (zmount) live in its node contract, so **the data is
 * lost** at scale 0 (the grid keeps nothing without a contract that pays for it); scaling up again deploys fresh VMs.
 * destroy cancels every contract of the deployment (node contracts, which hold the public IPs, and any name contract).
 * Every contract is recorded as the daemon's own cancellation before it is cancelled (ownCancels.ts), so the TFChain
 * intake does not take it for a lost deployment.
 *
 * A VM with a public IP is ready once its first port accepts TCP: provision waits for it (`bootTimeoutMs`, UNHEALTHY
 * after that, and what the attempt created is cancelled), and status probes it. restart replaces the VMs that do not
 * answer (Zero-OS cannot restart a VM from outside).
 *
 * The steps are module-level functions over a ThreefoldContext (context.ts): rankNodes, deployReplicas, probeVm,
 * statusOf, cancelContracts, provisionDeployment, replaceSilent; this factory serializes them per deployment and applies the
 * caller's signal and timeout.
 */
import type { Common } from '../../core/common.js'
import { AbortedError } from '../../core/errors.js'
import { withTimeout } from '../../core/retry.js'
import type { CallOptions, OwnedResource, Provisioner, SourceKind } from '../types.js'
import { cancelReplica, cancelUnknown } from './cancelContracts.js'
import { createThreefoldContext, deploymentIdOfName, sig, type ThreefoldProvisionerParameters } from './context.js'
import { deployMissing } from './deployReplicas.js'
import { answeringReplicas } from './probeVm.js'
import { provisionDeployment } from './provisionDeployment.js'
import { replaceSilent } from './replaceSilent.js'
import { liveContracts, statusOf } from './statusOf.js'

export { deploymentIdOfName, type ThreefoldProvisionerParameters } from './context.js'

export function createThreefoldProvisioner(common: Common, p: ThreefoldProvisionerParameters): Provisioner {
  const ctx = createThreefoldContext(common, p)
  const { state } = ctx
  /** One operation per deployment at a time: a timed-out call's cleanup finishes before a retry starts. */
  const locks = new Map<string, Promise<unknown>>()
  const locked = <T>(id: string, fn: () => Promise<T>): Promise<T> => {
    const run = (locks.get(id) ?? Promise.resolve()).catch(() => {}).then(fn)
    locks.set(id, run.catch(() => {}))
    return run
  }
  /** The caller's signal and timeout around one call: ABORTED before any side effect, TIMEOUT (retryable) after `timeoutMs`. */
  const run = async <T>(what: string, o: CallOptions, fn: (signal: AbortSignal | undefined) => Promise<T>): Promise<T> => {
    if (o.signal?.aborted) throw new AbortedError(`threefold ${what}`, o.signal.reason)
    return o.timeoutMs !== undefined ? withTimeout(`threefold ${what}`, o.timeoutMs, (s) => fn(s), o.signal) : fn(o.signal)
  }
  const current = async (id: string, signal: AbortSignal | undefined) => statusOf(ctx, id, await liveContracts(ctx, signal), await answeringReplicas(ctx, id))
  const sourceKinds: SourceKind[] = p.allowTestingSources ? ['native', 'testing'] : ['native']

  return {
    id: 'threefold',
    sourceKinds,
    provision: (req, o = {}) => run('provision', o, (signal) => locked(req.deploymentId, () => provisionDeployment(ctx, req, signal))),
    status: (id, o = {}) => run('status', o, (signal) => current(id, signal)),
    scale: (id, replicas, o = {}) =>
      run('scale', o, (signal) =>
        locked(id, async () => {
          statusOf(ctx, id, await liveContracts(ctx, signal))
          const e = state[id]
          if (!e) return statusOf(ctx, id)
          e.wanted = replicas
          while (e.replicas.length > replicas) {
            await cancelReplica(ctx, e.replicas.at(-1)!, sig(signal))
            e.replicas.pop()
            ctx.save()
          }
          if (e.replicas.length < replicas) await deployMissing(ctx, id, sig(signal))
          ctx.save()
          return current(id, signal)
        }),
      ),
    restart: (id, o = {}) => run('restart', o, (signal) => locked(id, () => replaceSilent(ctx, id, signal))),
    destroy: (id, o = {}) =>
      run('destroy', o, (signal) =>
        locked(id, async () => {
          for (const r of state[id]?.replicas ?? []) await cancelReplica(ctx, r, sig(signal))
          await cancelUnknown(ctx, id, signal)
          delete state[id]
          ctx.save()
        }),
      ),
    listOwned: (o = {}) =>
      run('listOwned', o, async (signal) => {
        const { contracts } = await p.supervisor.call('listContracts', {}, sig(signal))
        return contracts.flatMap((c): OwnedResource[] => {
          const dep = deploymentIdOfName(c.deploymentName ?? c.name)
          return dep ? [{ deploymentId: dep, kind: `${c.kind}-contract`, id: c.contractId, ...(c.nodeId && { placement: `node-${c.nodeId}` }) }] : []
        })
      }),
    async close() {
      await p.supervisor.close()
    },
  }
}
