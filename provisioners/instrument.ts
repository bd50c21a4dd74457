/**
 * Wrap a Provisioner so every call is measured by target: attempts, failures (by error code) and latency per
 * operation, the last error, and the replicas wanted vs ready of each deployment as last reported. The wrapped
 * provisioner behaves exactly as the original (same results, same errors).
 */
import type { Common } from '../core/common.js'
import { BaseError } from '../core/errors.js'
import type { DeploymentStatus, Provisioner } from './types.js'

export type InstrumentedProvisioner = Provisioner & {
  /** The last failed call (operation, error code, message, when), until a later call of the same operation succeeds. */
  lastError(): { op: string; code: string; message: string; at: string } | undefined
  /** Replicas wanted and ready, summed over the deployments this target last reported on. */
  replicas(): { wanted: number; ready: number }
}

const OPS = ['provision', 'status', 'scale', 'restart', 'destroy', 'listOwned'] as const

/** Measure `p` under the target name `name` (e.g. "local", "ssh:rack-1"). */
export function instrumentProvisioner(common: Common, name: string, p: Provisioner): InstrumentedProvisioner {
  const attempts = common.metrics.counter('bpo_provisioner_calls_total', 'Provisioner calls by target and operation', { labels: ['target', 'op'] })
  const failures = common.metrics.counter('bpo_provisioner_failures_total', 'Failed provisioner calls by target, operation and error code', { labels: ['target', 'op', 'code'] })
  const seconds = common.metrics.histogram('bpo_provisioner_seconds', 'Provisioner call latency by target and operation, seconds', {
    labels: ['target', 'op'],
    buckets: [0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
  })
  const deployments = new Map<string, { wanted: number; ready: number }>()
  let last: { op: string; code: string; message: string; at: string } | undefined
  for (const op of OPS) attempts.inc({ target: name, op }, 0)

  const measure = <T>(op: (typeof OPS)[number], fn: () => Promise<T>): Promise<T> => {
    const t0 = performance.now()
    attempts.inc({ target: name, op })
    return fn().then(
      (v) => {
        seconds.observe((performance.now() - t0) / 1000, { target: name, op })
        if (last?.op === op) last = undefined
        return v
      },
      (err: unknown) => {
        seconds.observe((performance.now() - t0) / 1000, { target: name, op })
        const code = err instanceof BaseError ? err.code : (err as Error)?.name ?? 'Error'
        failures.inc({ target: name, op, code })
        last = { op, code, message: err instanceof BaseError ? err.shortMessage : String((err as Error)?.message ?? err).split('\n')[0]!, at: new Date().toISOString() }
        throw err
      },
    )
  }
  const seen = (st: DeploymentStatus) => {
    if (st.exists) deployments.set(st.deploymentId, { wanted: st.replicasWanted, ready: st.replicasReady })
    else deployments.delete(st.deploymentId)
    return st
  }
  return {
    id: p.id,
    sourceKinds: p.sourceKinds,
    provision: (req, o) => measure('provision', () => p.provision(req, o)).then(seen),
    status: (id, o) => measure('status', () => p.status(id, o)).then(seen),
    scale: (id, n, o) => measure('scale', () => p.scale(id, n, o)).then(seen),
    restart: (id, o) => measure('restart', () => p.restart(id, o)).then(seen),
    destroy: (id, o) =>
      measure('destroy', () => p.destroy(id, o)).then(() => {
        deployments.delete(id)
      }),
    listOwned: (o) => measure('listOwned', () => p.listOwned(o)),
    close: () => p.close(),
    lastError: () => last,
    replicas() {
      let wanted = 0
      let ready = 0
      for (const d of deployments.values()) {
        wanted += d.wanted
        ready += d.ready
      }
      return { wanted, ready }
    },
  }
}
