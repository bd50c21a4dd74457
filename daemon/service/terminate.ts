/** terminating → closed: destroy, withdraw what was earned, refund the rest. */
import type { ReasonCode } from '../../core/errors.js'
import { faultPoint } from '../../core/faults.js'
import { get, move, patch, type ServiceContext } from './context.js'
import { cancelDeploy } from './deploy.js'
import { destroyQuietly } from './destroy.js'
import { accrueCost, payoutsOf } from './ledger.js'
import { recordPayouts } from '../payouts.js'
import { closeVanished, onChain } from './vanished.js'

export async function terminate(ctx: ServiceContext, id: string) {
  if (get(ctx, id)!.reason === 'SERVICE_VANISHED') return closeVanished(ctx, id)
  await cancelDeploy(ctx, id)
  await patch(ctx, id, (r) => {
    r.intent = { op: 'destroy', at: new Date().toISOString(), attempt: (r.intent?.attempt ?? 0) + 1 }
  })
  faultPoint('terminate.destroy-intent')
  await destroyQuietly(ctx, id)
  faultPoint('terminate.destroyed')
  await patch(ctx, id, (r) => {
    accrueCost(r)
    r.replicas = 0
    r.endpoints = []
    r.intent = { op: 'withdraw', at: new Date().toISOString(), attempt: 1 }
  })
  faultPoint('terminate.withdraw-intent')
  const withdrawn = await onChain(ctx, id, () => ctx.escrow.withdraw(BigInt(id)))
  if (withdrawn === 'vanished') return closeVanished(ctx, id)
  faultPoint('terminate.withdrawn')
  const reason: ReasonCode = get(ctx, id)!.reason ?? 'TTL_REACHED'
  await patch(ctx, id, (r) => {
    r.intent = { op: 'refund', at: new Date().toISOString(), attempt: 1, detail: reason }
  })
  faultPoint('terminate.refund-intent')
  const refunded = await onChain(ctx, id, () => ctx.escrow.refund(BigInt(id), reason))
  if (refunded === 'vanished') return closeVanished(ctx, id)
  faultPoint('terminate.refunded')
  ctx.m.refunds.inc({ reason })
  await move(ctx, id, 'closed', reason, (r) => {
    // the ledger at closed is what the chain paid out (from the receipts; the follower's events count once more never)
    recordPayouts(r, ctx.config.chain.chainId, [...payoutsOf(withdrawn), ...payoutsOf(refunded)])
    delete r.intent
  })
}
