/**
 * The local target's dispatch on source kind: container sources go to podman (containers.ts), native and testing
 * sources to the process runner (createLocalProvisioner.ts, steps in native/). Podman is checked once at start-up by
 * running a container; `container` joins `sourceKinds` only when that check passes, and `capabilities()` says why not.
 */
import { hostname } from 'node:os'
import { join } from 'node:path'
import type { Common } from '../../core/common.js'
import { withTimeout } from '../../core/retry.js'
import { detectPodmanOnce, type PodmanCapability } from '../container/detect.js'
import { createPodman, type PodmanParameters } from '../container/podman.js'
import { ProvisionError } from '../errors.js'
import type { Capabilities, CallOptions, DeploymentStatus, Provisioner, SourceKind } from '../types.js'
import { createLocalContainers } from './containers.js'
import { readNativeUsage } from './nativeUsage.js'

export type LocalContainerOptions = {
  /** Run container sources with podman where it works ('auto', checked at start-up), or never ('off'). Default 'auto'. */
  containers?: 'auto' | 'off'
  /** How podman is run (binary, its environment); default: `podman` on PATH with the daemon's CONTAINERS_* settings. */
  podman?: PodmanParameters
  /** Image pull timeout, ms. Default 600_000. */
  pullTimeoutMs?: number
}

/** The local provisioner, plus `detect()`: resolves once podman was checked (start-up may await it). */
export type LocalProvisioner = Provisioner & { capabilities(): Capabilities; detect(): Promise<Capabilities> }

const DEPLOYMENT_ID = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/

/** Wrap the native local provisioner with container sources. */
export function withContainers(
  common: Common,
  native: Provisioner,
  p: LocalContainerOptions & { rootDir: string; operatorId: string },
  s: { host: string; portRange: [number, number]; healthTimeoutMs: number; stopGraceMs: number; maxReplicas: number; longCallMs: number },
): LocalProvisioner {
  const log = common.logger
  // one array, shared with whoever read `sourceKinds` before the check finished: `container` joins it in place
  const sourceKinds: SourceKind[] = [...native.sourceKinds]
  const podman = createPodman(p.podman)
  let cap: PodmanCapability | undefined
  const checked: Promise<PodmanCapability> =
    p.containers === 'off'
      ? Promise.resolve({ ok: false, reason: 'containers are off in the configuration' })
      : detectPodmanOnce(podman, { signal: common.signal, workDir: join(p.rootDir, 'tmp') })
  const done = checked.then((c) => {
    cap = c
    if (c.ok) {
      sourceKinds.push('container')
      log.info({ version: c.version, runArgs: c.runArgs }, 'podman runs containers here: container sources enabled')
    } else if (p.containers !== 'off') log.warn({ reason: c.reason }, 'container sources disabled on the local target')
    return capabilities()
  })
  function capabilities(): Capabilities {
    if (!cap) return { container: { ok: false, reason: 'podman check still running' } }
    return { container: cap.ok ? { ok: true, detail: `podman ${cap.version}${cap.runArgs.length ? ` (${cap.runArgs.join(' ')})` : ''}` } : { ok: false, reason: cap.reason } }
  }
  const ctr = createLocalContainers(common, {
    rootDir: p.rootDir,
    operatorId: p.operatorId,
    host: s.host === '0.0.0.0' ? '127.0.0.1' : s.host,
    portRange: s.portRange,
    healthTimeoutMs: s.healthTimeoutMs,
    stopGraceMs: s.stopGraceMs,
    maxReplicas: s.maxReplicas,
    placement: hostname(),
    podman,
    capability: () => checked,
    ...(p.pullTimeoutMs && { pullTimeoutMs: p.pullTimeoutMs }),
  })

  const locks = new Map<string, Promise<unknown>>()
  function locked<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const prev = locks.get(id) ?? Promise.resolve()
    const run = prev.then(fn, fn)
    const tail = run.catch(() => undefined)
    locks.set(id, tail)
    void tail.then(() => locks.get(id) === tail && locks.delete(id))
    return run
  }
  let closed = false
  function call<T>(what: string, ms: number, o: CallOptions | undefined, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    if (closed) return Promise.reject(new ProvisionError('local provisioner is closed', { code: 'PROVISIONER_CLOSED' }))
    return withTimeout(what, o?.timeoutMs ?? ms, fn, o?.signal)
  }
  const shortMs = 60_000
  /** A native deployment's status with its replicas' CPU counters (nativeUsage.ts). */
  async function withUsage(st: DeploymentStatus): Promise<DeploymentStatus> {
    const usage = st.exists && st.replicasWanted > 0 ? await readNativeUsage(p.rootDir, st.deploymentId, p.operatorId).catch(() => undefined) : undefined
    return usage ? { ...st, usage } : st
  }
  const isContainer = async (id: string, _signal: AbortSignal) => typeof id === 'string' && DEPLOYMENT_ID.test(id) && (await ctr.has(id))

  return {
    id: native.id,
    sourceKinds,
    capabilities,
    detect: () => done,

    async provision(req, o) {
      if (req?.source?.kind !== 'container') return withUsage(await native.provision(req, o))
      return call(`local provision ${req.deploymentId}`, s.longCallMs, o, (signal) => locked(String(req.deploymentId), () => ctr.provision(req, signal)))
    },
    status(id, o) {
      const ms = o?.timeoutMs ?? shortMs
      return call(`local status ${id}`, ms, o, async (signal) => {
        if (await isContainer(id, signal)) return ctr.status(id, signal)
        return withUsage(await native.status(id, { signal, timeoutMs: ms }))
      })
    },
    scale(id, replicas, o) {
      const ms = o?.timeoutMs ?? s.longCallMs
      return call(`local scale ${id}`, ms, o, async (signal) => {
        if (!(await isContainer(id, signal))) return withUsage(await native.scale(id, replicas, { signal, timeoutMs: ms }))
        if (!Number.isInteger(replicas) || replicas < 0 || replicas > s.maxReplicas) {
          throw new ProvisionError('invalid deployment request', { code: 'REQUEST_INVALID', reason: 'MALFORMED_REQUEST', details: [`replicas: got ${replicas}, expected an integer 0..${s.maxReplicas}`] })
        }
        return locked(id, () => ctr.scale(id, replicas, signal))
      })
    },
    restart(id, o) {
      const ms = o?.timeoutMs ?? s.longCallMs
      return call(`local restart ${id}`, ms, o, async (signal) => ((await isContainer(id, signal)) ? locked(id, () => ctr.restart(id, signal)) : withUsage(await native.restart(id, { signal, timeoutMs: ms }))))
    },
    destroy(id, o) {
      const ms = o?.timeoutMs ?? shortMs + 4 * s.stopGraceMs
      // both kinds: whatever of this id exists goes
      return call(`local destroy ${id}`, ms, o, async (signal) => {
        await native.destroy(id, { signal, timeoutMs: ms })
        await locked(id, () => ctr.destroy(id, signal))
      })
    },
    listOwned(o) {
      const ms = o?.timeoutMs ?? shortMs
      return call('local listOwned', ms, o, async (signal) => [...(await native.listOwned({ signal, timeoutMs: ms })), ...(await ctr.listOwned(signal))])
    },
    async close() {
      closed = true
      await native.close()
    },
  }
}
