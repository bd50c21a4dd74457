/**
 * One reconcile pass: every live service gets a step, at most one at a time per service. A slow service (an
 * unreachable host) holds only itself: the loop never waits for it.
 */
import { TERMINAL, type ServiceContext } from './context.js'
import { serial, step, type Serial } from './step.js'
import type { PaymentVerifier } from './verify.js'

const STATES = ['requested', 'provisioning', 'active', 'scaled-to-zero', 'terminating', 'closed', 'refunding', 'refunded'] as const

/**
 * Start one pass; resolves when this pass's steps settle. `owns` filters the services this daemon acts on. The
 * payment state comes from the facts intake recorded; `verify` compares a rolling slice of them with the escrow
 * (one read), beside the steps rather than before them.
 */
export function tick(ctx: ServiceContext, q: Serial, owns: (serviceId: string) => boolean = () => true, verify?: PaymentVerifier): Promise<void> {
  const t0 = performance.now()
  ctx.m.ticks.inc()
  const counts: Record<string, number> = {}
  // a node on another chain: its block times and escrow reads mean nothing here — expire, end or count missing nothing
  const trusted = ctx.chainTrusted?.() ?? true
  if (!trusted) ctx.log.debug('the RPC node answers for another chain: this reconcile pass changes nothing')
  const work: Array<Promise<void>> = verify && trusted ? [verify.run()] : []
  for (const s of Object.values(ctx.store.read().services)) {
    counts[s.state] = (counts[s.state] ?? 0) + 1
    if (!trusted || TERMINAL.includes(s.state) || q.inFlight.has(s.serviceId) || !owns(s.serviceId)) continue
    work.push(serial(ctx, q, s.serviceId, () => step(ctx, s.serviceId)))
  }
  for (const st of STATES) ctx.m.services.set(counts[st] ?? 0, { state: st })
  ctx.m.tickSeconds.observe((performance.now() - t0) / 1000)
  return Promise.all(work).then(() => undefined)
}
