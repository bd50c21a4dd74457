/**
 * One reconcile pass: every live service gets a step, at most one at a time per service. A slow service (an
 * unreachable host) holds only itself: the loop never waits for it.
 */
import { TERMINAL, type ServiceContext } from './context.js'
import { serial, step, type Serial } from './step.js'
import type { PaymentVerifier } from './verify.js'

const STATES = ['requested', 'provisioning', 'active', 'scaled-to-zero', 'terminating', 'closed', 'refunding', 'refunded'] as const

/**
 * Steps a pass runs at once. With 10,000 services all started together a pass held every step's working set at
 * the same time (the heap peaked ~160 MB above its idle size); a window keeps the peak to what `STEP_WINDOW` steps
 * need. A step that takes longer than `STEP_SLOT_MS` gives its slot to the next one and goes on by itself (still
 * alone for its service), so slow services (an unreachable host) never hold the pass back.
 */
export const STEP_WINDOW = 256
export const STEP_SLOT_MS = 1_000

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
  const due: string[] = []
  for (const s of Object.values(ctx.store.read().services)) {
    counts[s.state] = (counts[s.state] ?? 0) + 1
    if (!trusted || TERMINAL.includes(s.state) || q.inFlight.has(s.serviceId) || !owns(s.serviceId)) continue
    due.push(s.serviceId)
  }
  for (const st of STATES) ctx.m.services.set(counts[st] ?? 0, { state: st })
  ctx.m.tickSeconds.observe((performance.now() - t0) / 1000)
  return windowed(due, (id) => serial(ctx, q, id, () => step(ctx, id)), work)
}

/**
 * Run `run(id)` for every id, at most `width` holding a slot at once (a run holds its slot `slotMs` at most);
 * resolves when every run (and `also`) has settled.
 */
export async function windowed(ids: readonly string[], run: (id: string) => Promise<void>, also: Array<Promise<void>> = [], width = STEP_WINDOW, slotMs = STEP_SLOT_MS): Promise<void> {
  const all = also
  let next = 0
  const slot = async () => {
    while (next < ids.length) {
      const p = run(ids[next++]!)
      all.push(p)
      let timer: NodeJS.Timeout | undefined
      await Promise.race([p, new Promise<void>((r) => (timer = setTimeout(r, slotMs)))]).finally(() => clearTimeout(timer))
    }
  }
  await Promise.all(Array.from({ length: Math.min(width, ids.length) }, slot))
  await Promise.all(all)
}
