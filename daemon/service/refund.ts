/** refunding → refunded: make sure nothing runs, then refund the whole unserved balance on chain with the reason. */
import { faultPoint } from '../../core/faults.js'
import { get, move, patch, type ServiceContext } from './context.js'
import { cancelDeploy } from './deploy.js'
import { destroyQuietly } from './destroy.js'
import { accrueCost, payoutsOf } from './ledger.js'
import { recordPayouts } from '../payouts.js'
import { closeVanished, onChain } from './vanished.js'

export async function refund(ctx: ServiceContext, id: string) {
  if (get(ctx, id)!.reason === 'SERVICE_VANISHED') return closeVanished(ctx, id)
  await cancelDeploy(ctx, id)
  await patch(ctx, id, (r) => {
    accrueCost(r)
    r.replicas = 0
    r.endpoints = []
    r.intent = { op: 'destroy', at: new Date().toISOString(), attempt: (r.intent?.attempt ?? 0) + 1, detail: 'rollback' }
  })
  faultPoint('refund.destroy-intent')
  await destroyQuietly(ctx, id)
  faultPoint('refund.destroyed')
  const reason = get(ctx, id)!.reason ?? 'PROVISION_FAILED'
  await patch(ctx, id, (r) => {
    r.intent = { op: 'refund', at: new Date().toISOString(), attempt: (r.intent?.attempt ?? 0) + 1, detail: reason }
  })
  faultPoint('refund.refund-intent')
  const res = await onChain(ctx, id, () => ctx.escrow.refund(BigInt(id), reason))
  if (res === 'vanished') return closeVanished(ctx, id)
  faultPoint('refund.refunded')
  ctx.m.refunds.inc({ reason })
  await move(ctx, id, 'refunded', reason, (r) => {
    recordPayouts(r, ctx.config.chain.chainId, payoutsOf(res))
    delete r.intent
  }, res === 'already' ? 'already refunded on chain' : undefined)
}
