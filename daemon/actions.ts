/**
 * Operator actions from the console: restart a service's replicas, stop a service (end it: destroyed, earned
 * withdrawn, the rest refunded with OPERATOR_STOPPED, through the service manager's own terminating / refunding
 * steps), and drain the operator at run time (new requests refused with OPERATOR_DRAINING). Every action is recorded
 * in the service's history before the service manager acts on it.
 */
import { existsSync, writeFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import type { Common } from '../core/common.js'
import { BaseError } from '../core/errors.js'
import type { TargetRegistry } from './ports.js'
import { transition, type ServiceState } from './state.js'
import type { Store } from './store.js'

export class ActionError extends BaseError {
  override name = 'ActionError'
  readonly status: number
  constructor(status: number, code: string, message: string) {
    super(message, { code })
    this.status = status
  }
}

export type Actions = {
  /** Restart the replicas of an active service in place (the provisioner's restart). */
  restart(serviceId: string, signal?: AbortSignal): Promise<{ serviceId: string; state: ServiceState; endpoints: string[] }>
  /** End a service: an active or scaled-to-zero one is terminated, one not yet running is refunded. */
  stop(serviceId: string): Promise<{ serviceId: string; state: ServiceState }>
  /** Take new requests (false) or refuse them (true); kept across restarts in `<data_dir>/draining`. */
  drain(on: boolean): { draining: boolean }
  draining(): boolean
}

export type CreateActionsParameters = {
  store: Store
  targets: TargetRegistry
  /** The service manager's kick: act on the service now. */
  kick(serviceId: string): void
  dataDir: string
  /** `operator.draining` of the config (a drain the console cannot lift). */
  configDraining: boolean
  timeoutMs?: number
}

export function createActions(common: Common, p: CreateActionsParameters): Actions {
  const log = common.logger
  const marker = join(p.dataDir, 'draining')
  let drained = existsSync(marker)
  const record = (id: string) => {
    const s = p.store.read().services[id]
    if (!s) throw new ActionError(404, 'SERVICE_NOT_FOUND', `no service ${id}`)
    return s
  }
  return {
    async restart(id, signal) {
      const s = record(id)
      if (s.state !== 'active') throw new ActionError(409, 'ACTION_NOT_ALLOWED', `service ${id} is ${s.state}; only an active service can be restarted`)
      const t = s.quote && p.targets.byName(s.quote.target)
      if (!t) throw new ActionError(409, 'ACTION_NOT_ALLOWED', `service ${id}: its target ${s.quote?.target ?? '(none)'} is not configured`)
      await p.store.update((st) => {
        const r = st.services[id]
        if (r?.state === 'active') transition(r, 'active', 'OPERATOR_RESTART', { detail: 'restart asked from the console' })
      })
      log.info({ serviceId: id, target: t.name }, 'operator restart')
      const after = await t.provisioner.restart(s.deploymentId, { ...(signal && { signal }), timeoutMs: p.timeoutMs ?? 120_000 })
      await p.store.update((st) => {
        const r = st.services[id]
        if (!r || r.state !== 'active') return
        r.health.restarts++
        r.health.lastRestartAt = new Date().toISOString()
        r.health.healthy = after.healthy
        r.endpoints = after.endpoints
      })
      p.kick(id)
      const now = record(id)
      return { serviceId: id, state: now.state, endpoints: now.endpoints }
    },
    async stop(id) {
      const s = record(id)
      const to: ServiceState | undefined =
        s.state === 'active' || s.state === 'scaled-to-zero' ? 'terminating' : s.state === 'requested' || s.state === 'provisioning' ? 'refunding' : undefined
      if (!to) throw new ActionError(409, 'ACTION_NOT_ALLOWED', `service ${id} is ${s.state}; it is already ending or ended`)
      const moved = await p.store.update((st) => {
        const r = st.services[id]
        if (!r || r.state !== s.state) return false
        r.reason = 'OPERATOR_STOPPED'
        transition(r, to, 'OPERATOR_STOPPED', { detail: 'stopped from the console' })
        return true
      })
      if (!moved) throw new ActionError(409, 'ACTION_NOT_ALLOWED', `service ${id} changed state meanwhile; look again`)
      log.info({ serviceId: id, to }, 'operator stop')
      p.kick(id)
      return { serviceId: id, state: to }
    },
    drain(on) {
      if (on) writeFileSync(marker, `${new Date().toISOString()}\n`, { mode: 0o600 })
      else rmSync(marker, { force: true })
      drained = on
      log.warn({ draining: on || p.configDraining }, on ? 'draining: new requests are refused' : 'drain lifted')
      return { draining: on || p.configDraining }
    },
    draining: () => drained || p.configDraining,
  }
}
