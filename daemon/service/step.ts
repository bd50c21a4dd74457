/** One step of a service's state machine, never two at once for the same service. */
import { callOpts, get, move, patch, Rejection, targetOf, TERMINAL, type ServiceContext } from './context.js'
import { kickDeploy } from './deploy.js'
import { quote } from './quote.js'
import { reconcile } from './reconcile.js'
import { refund } from './refund.js'
import { terminate } from './terminate.js'

/** Advance one service by one step of its state machine. */
export async function step(ctx: ServiceContext, id: string): Promise<void> {
  const s = get(ctx, id)
  if (!s || TERMINAL.includes(s.state)) return
  switch (s.state) {
    case 'requested':
      return requested(ctx, id)
    case 'provisioning':
      return kickDeploy(ctx, id)
    case 'refunding':
      return refund(ctx, id)
    case 'terminating':
      return terminate(ctx, id)
    case 'active':
    case 'scaled-to-zero':
      return reconcile(ctx, id)
  }
}

/** requested: quote; a rejection is refunded at once, anything else (RPC down, a race) is retried next tick. */
async function requested(ctx: ServiceContext, id: string) {
  // a service sent back to placement (its grid deployment was lost): nothing of the old deployment may keep running,
  // or be adopted by the next provision under the same name, before placement chooses again
  if (get(ctx, id)!.intent?.op === 'destroy') await destroyBeforeReplacing(ctx, id)
  const s = get(ctx, id)!
  try {
    await quote(ctx, s)
  } catch (err) {
    if (err instanceof Rejection) {
      ctx.log.warn({ serviceId: id, eventId: s.history[0]?.eventId, reason: err.reason, problems: err.details }, 'request rejected; refunding')
      await move(ctx, id, 'refunding', err.reason!, (r) => {
        r.reason = err.reason!
        r.problems = err.details
      }, err.details.join('; '))
      return refund(ctx, id)
    }
    // not the customer's fault: try again next tick
    ctx.log.warn({ serviceId: id, err: (err as Error).message.split('\n')[0] }, 'request not quoted yet; will retry')
    return
  }
  if (get(ctx, id)?.state === 'provisioning') kickDeploy(ctx, id)
}

/** Destroy the deployment of the service's last placement (its quote's target), then clear the destroy intent. */
async function destroyBeforeReplacing(ctx: ServiceContext, id: string) {
  const s = get(ctx, id)!
  const t = targetOf(ctx, s)
  await t.provisioner.destroy(s.deploymentId, callOpts(ctx, t))
  await patch(ctx, id, (r) => {
    if (r.state !== 'requested' || r.intent?.op !== 'destroy') return
    delete r.intent
    r.replicas = 0
    r.endpoints = []
  })
  ctx.log.info({ serviceId: id, target: t.name, deploymentId: s.deploymentId }, 'old deployment destroyed; placing the service again')
}

/** Per-service serialisation: a service's steps run one at a time; a kick during a step runs one more after it. */
export type Serial = { inFlight: Map<string, Promise<void>>; again: Set<string> }

export function serial(ctx: ServiceContext, q: Serial, id: string, fn: () => Promise<void>): Promise<void> {
  const cur = q.inFlight.get(id)
  if (cur) {
    q.again.add(id)
    return cur
  }
  const run = (async () => {
    try {
      await fn()
    } catch (err) {
      if (ctx.common.signal.aborted) ctx.log.debug({ serviceId: id, err: (err as Error).message }, 'service work interrupted by shutdown')
      else {
        ctx.m.tickErrors.inc()
        ctx.log.error({ err, serviceId: id }, 'service work failed; will retry on the next tick')
      }
    } finally {
      q.inFlight.delete(id)
      if (q.again.delete(id) && !ctx.stopped()) void serial(ctx, q, id, () => step(ctx, id))
    }
  })()
  q.inFlight.set(id, run)
  return run
}
