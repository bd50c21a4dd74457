/**
 * The verification sweep of each tick: the payment facts intake keeps from the events (daemon/paymentFacts.ts) are
 * what reconcile decides from; this compares a rolling slice of them (`[loop] verify_per_tick` services) with the
 * escrow's records, read in one `getServices` call at the follower's cursor block (where intake has applied every
 * event, so a difference is drift, not lag). Every disagreement is logged and counted
 * (`bpo_payment_fact_disagreements_total` by field), then healed from the chain. A service the chain does not know
 * at that block counts as one missing read (SERVICE_VANISHED after enough of them); one it knows again forgets its
 * missing reads.
 */
import { factsFromOnchain, rollingSlice, verifySlice, type OnchainFacts } from '../paymentFacts.js'
import { get, TERMINAL, type ServiceContext } from './context.js'
import { missingOnChain } from './vanished.js'

export type PaymentVerifier = {
  /** One sweep over the next slice; never throws (a failed read is logged, counted and retried next tick). */
  run(): Promise<void>
}

export function createPaymentVerifier(ctx: ServiceContext, owns: (serviceId: string) => boolean = () => true): PaymentVerifier {
  let at = 0
  const size = ctx.config.loop.verifyPerTick
  const disagreements = ctx.common.metrics.counter('bpo_payment_fact_disagreements_total', 'Payment facts kept from events that disagreed with the escrow (healed from the chain), by field')
  const sweeps = ctx.common.metrics.counter('bpo_payment_fact_sweeps_total', 'Verification sweeps of payment facts, by outcome')
  let running: Promise<void> | undefined

  async function sweep(): Promise<void> {
    const st = ctx.store.read()
    const cursor = st.cursor?.blockNumber
    if (cursor === undefined || size <= 0) return
    const block = BigInt(cursor)
    const live = Object.values(st.services)
      .filter((s) => !TERMINAL.includes(s.state) && s.chain?.onchainState !== undefined && owns(s.serviceId))
      .map((s) => s.serviceId)
    const { slice, next } = rollingSlice(live, at, size)
    at = next
    if (!slice.length) return
    let onchain
    try {
      onchain = await ctx.escrow.getServices(slice.map(BigInt), ctx.common.signal, block)
    } catch (err) {
      sweeps.inc({ outcome: 'read_failed' })
      ctx.log.warn({ err: (err as Error).message.split('\n')[0], block: cursor, services: slice.length }, 'verification sweep: escrow records unavailable; next tick')
      return
    }
    sweeps.inc({ outcome: 'done' })
    const views: Array<OnchainFacts | undefined> = onchain.map((o) => o && { state: o.state, tier: o.tier, ratePerHour: o.ratePerHour, balance: o.balance, settledAt: o.settledAt, endsAt: o.endsAt })
    const now = ctx.store.read()
    const found = verifySlice(slice.map((id) => ({ serviceId: id, facts: now.services[id]?.chain })), views, block)
    const byService = new Map<string, typeof found>()
    for (const d of found) byService.set(d.serviceId, [...(byService.get(d.serviceId) ?? []), d])
    const heal: Array<[string, OnchainFacts]> = []
    for (const [id, ds] of byService) {
      if (ds.some((d) => d.field === 'exists')) {
        disagreements.inc({ field: 'exists' })
        try {
          if (await missingOnChain(ctx, id)) ctx.kick(id)
        } catch {
          // SERVICE_MISSING: one more missing read; a lagging node is likelier until it has been missing long enough
        }
        continue
      }
      for (const d of ds) disagreements.inc({ field: d.field })
      ctx.log.warn({ serviceId: id, block: cursor, disagreements: ds.map((d) => `${d.field}: recorded ${d.record ?? '(none)'}, chain ${d.chain}`) }, 'payment facts disagree with the escrow; healed from the chain')
      heal.push([id, views[slice.indexOf(id)]!])
    }
    const seenAgain = slice.filter((id, i) => views[i] && get(ctx, id)?.missing)
    if (!heal.length && !seenAgain.length) return
    // one state update for the whole slice: only the rows that changed
    await ctx.store.update((draft) => {
      for (const [id, o] of heal) {
        const r = draft.services[id]
        if (r && (r.chain?.asOfBlock === undefined || BigInt(r.chain.asOfBlock) <= block)) r.chain = { ...r.chain, ...factsFromOnchain(o, block) }
      }
      for (const id of seenAgain) delete draft.services[id]?.missing
    })
    // a healed service may have to act (ended, expired, topped up): step it now
    for (const [id] of heal) ctx.kick(id)
  }

  return {
    run() {
      // never two sweeps at once: a slow node delays the next sweep, not the services
      running ??= sweep()
        .catch((err) => ctx.log.error({ err }, 'verification sweep failed'))
        .finally(() => {
          running = undefined
        })
      return running
    },
  }
}
