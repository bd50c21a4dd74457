/** Tear a service's deployment down on its target (already gone is success). */
import { isRetryable } from '../../core/errors.js'
import { retry } from '../../core/retry.js'
import { callOpts, get, type ServiceContext } from './context.js'

/**
 * Destroy everything of the service on its target. A target no longer configured is logged as a leak for the operator
 * and does not block the customer's refund.
 */
export async function destroyQuietly(ctx: ServiceContext, id: string) {
  const s = get(ctx, id)
  if (!s?.quote) return
  const t = ctx.targets.byName(s.quote.target)
  if (!t) {
    ctx.m.leaks.inc({ target: s.quote.target })
    ctx.log.error({ serviceId: id, deploymentId: s.deploymentId, target: s.quote.target }, 'target no longer configured: cannot destroy; clean it up by hand')
    return
  }
  try {
    await retry(() => t.provisioner.destroy(s.deploymentId, callOpts(ctx, t)), { attempts: 3, baseMs: 500, signal: ctx.common.signal, shouldRetry: (err) => isRetryable(err) })
  } catch (err) {
    ctx.log.error({ serviceId: id, err }, 'destroy failed; the next tick and the orphan sweep will retry')
    throw err
  }
}
