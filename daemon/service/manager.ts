/**
 * The service manager: drives every service through the state machine of DESIGN.md. It composes the named lifecycle
 * steps of this folder (quote, deploy, reconcile, refund, terminate, vanished) over one explicit ServiceContext; the
 * reconcile tick (30 s by default) steps every live service; events kick single services at once. Every transition
 * and every pending side effect (intent) is written to the store before the side effect is attempted.
 */
import type { Common } from '../../core/common.js'
import { sleep } from '../../core/retry.js'
import type { OperatorConfig } from '../config.js'
import { createCapacityBook } from '../placement/capacity.js'
import type { Placement } from '../placement/placement.js'
import type { EscrowPort, TargetRegistry } from '../ports.js'
import type { Store } from '../store.js'
import { createServiceMetrics, type ServiceContext } from './context.js'
import { createDeployQueue } from './deploy.js'
import { serial, step, type Serial } from './step.js'
import { tick } from './tick.js'
import { createPaymentVerifier } from './verify.js'

export type ServiceManager = {
  /** Act on one service now (after an event), without waiting for the next tick. */
  kick(serviceId: string): void
  /** One reconcile pass over every service; resolves when all per-service work of this pass settled. */
  tick(): Promise<void>
  start(): void
  /** Stop ticking and wait for work in flight (bounded by the shutdown grace period). */
  stop(): Promise<void>
  /** Resolves when no service work is in flight or queued. */
  idle(): Promise<void>
  /** The context the steps work over (for operator actions and the API). */
  readonly context: ServiceContext
}

export type CreateServiceManagerParameters = {
  config: OperatorConfig
  store: Store
  escrow: EscrowPort
  targets: TargetRegistry
  placement: Placement
  /** Current chain time, unix seconds (the later of the latest block's timestamp and the wall clock). */
  now(): Promise<bigint>
  /** Services this daemon acts on (several daemons on one PostgreSQL: the ones whose lease it holds). */
  owns?: (serviceId: string) => boolean
  /** Draining at run time (an operator action), beside `[operator] draining`. */
  draining?: () => boolean
  /** False while the RPC node answers for another chain: reconcile passes wait (the chain follower knows). */
  chainTrusted?: () => boolean
  /** Called when a reconcile pass has settled, with its duration in seconds (metrics, the console's tick events). */
  onTick?(seconds: number): void
}

export function createServiceManager(common: Common, p: CreateServiceManagerParameters): ServiceManager {
  const q: Serial = { inFlight: new Map(), again: new Set() }
  let timer: NodeJS.Timeout | undefined
  let stopped = false
  const book = createCapacityBook()
  book.rebuild(p.store.read().services)
  const ctx: ServiceContext = {
    common,
    log: common.logger,
    config: p.config,
    store: p.store,
    escrow: p.escrow,
    targets: p.targets,
    placement: p.placement,
    book,
    load: new Map(),
    ...(p.draining && { draining: p.draining }),
    ...(p.chainTrusted && { chainTrusted: p.chainTrusted }),
    now: p.now,
    m: createServiceMetrics(common),
    deploys: createDeployQueue(p.config.deploy.concurrency),
    kick: (id) => {
      if (!stopped && (p.owns?.(id) ?? true)) void serial(ctx, q, id, () => step(ctx, id))
    },
    stopped: () => stopped,
  }
  const owns = p.owns ?? (() => true)
  const verifier = createPaymentVerifier(ctx, owns)
  const pending = () => [...q.inFlight.values(), ...[...ctx.deploys.running.values()].map((d) => d.promise)]
  const pass = () => {
    const t0 = performance.now()
    return tick(ctx, q, owns, verifier).then(() => p.onTick?.((performance.now() - t0) / 1000))
  }
  return {
    context: ctx,
    kick: ctx.kick,
    tick: pass,
    start() {
      const loop = () => {
        if (stopped) return
        try {
          void pass()
        } catch (err) {
          ctx.log.error({ err }, 'reconcile pass failed')
        }
        timer = setTimeout(loop, p.config.loop.intervalMs)
      }
      loop()
    },
    async stop() {
      stopped = true
      clearTimeout(timer)
      for (const d of ctx.deploys.running.values()) d.controller.abort(new Error('stopping'))
      await Promise.allSettled(pending())
    },
    async idle() {
      while (q.inFlight.size || ctx.deploys.running.size) {
        await Promise.allSettled(pending())
        await sleep(20)
      }
    },
  }
}
