/**
 * The orphan sweep: every resource carrying this operator's ownership label must belong to a service that is still
 * meant to exist. Anything else (a leak after a crash, a service refunded or closed) is destroyed.
 */
import type { Common } from '../core/common.js'
import type { TargetRegistry } from './ports.js'
import type { ServiceState } from './state.js'
import type { Store } from './store.js'

export type OrphanSweep = {
  /** One pass; returns the deployment ids destroyed. */
  run(): Promise<string[]>
  start(): void
  stop(): Promise<void>
}

/** States whose resources are meant to exist (or are being created or destroyed by the service manager). */
const LIVE: readonly ServiceState[] = ['requested', 'provisioning', 'active', 'scaled-to-zero', 'terminating', 'refunding']

export type CreateOrphanSweepParameters = {
  store: Store
  targets: TargetRegistry
  intervalMs: number
  /** Only deployments named with this prefix are candidates (this chain's, e.g. "bp-31337-"): the same operator id
   * may serve another chain from the same targets. */
  deploymentPrefix: string
  /** False while the state is not caught up with the chain: a record replayed later must not be swept first. */
  ready?: () => Promise<boolean>
}

export function createOrphanSweep(common: Common, p: CreateOrphanSweepParameters): OrphanSweep {
  const log = common.logger
  const swept = common.metrics.counter('bpo_orphans_destroyed_total', 'Resources destroyed by the orphan sweep')
  let timer: NodeJS.Timeout | undefined
  let running: Promise<string[]> | undefined
  let stopped = false
  const run = async (): Promise<string[]> => {
    const destroyed: string[] = []
    if (p.ready && !(await p.ready().catch(() => false))) {
      log.debug('state not caught up with the chain; sweep skipped')
      return destroyed
    }
    const live = new Set(
      Object.values(p.store.read().services)
        .filter((s) => LIVE.includes(s.state))
        .map((s) => s.deploymentId),
    )
    for (const prov of p.targets.provisioners()) {
      let owned
      try {
        owned = await prov.listOwned({ signal: common.signal, timeoutMs: 60_000 })
      } catch (err) {
        log.warn({ err: (err as Error).message, target: prov.id }, 'cannot list owned resources; sweep skipped for this target')
        continue
      }
      const orphans = [...new Set(owned.map((o) => o.deploymentId))].filter((d) => d.startsWith(p.deploymentPrefix) && !live.has(d))
      for (const d of orphans) {
        // re-read: the service may have been created since the listing
        const stillOrphan = !Object.values(p.store.read().services).some((s) => s.deploymentId === d && LIVE.includes(s.state))
        if (!stillOrphan) continue
        try {
          await prov.destroy(d, { signal: common.signal, timeoutMs: 60_000 })
          destroyed.push(d)
          swept.inc({ target: prov.id })
          log.warn({ deploymentId: d, target: prov.id }, 'orphan destroyed')
        } catch (err) {
          log.error({ err, deploymentId: d, target: prov.id }, 'could not destroy orphan')
        }
      }
    }
    return destroyed
  }
  return {
    run: () => (running ??= run().finally(() => (running = undefined))),
    start() {
      const loop = () => {
        timer = setTimeout(async () => {
          await (running ??= run().finally(() => (running = undefined))).catch(() => [])
          if (!stopped && !common.signal.aborted) loop()
        }, p.intervalMs)
        timer.unref()
      }
      loop()
    },
    async stop() {
      stopped = true
      clearTimeout(timer)
      await running?.catch(() => undefined)
    },
  }
}
