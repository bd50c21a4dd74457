/**
 * Services the chain forgets (a reorg deeper than the confirmations, a reset chain): counted missing read by read,
 * declared SERVICE_VANISHED after `[loop] vanished_after_ms` and three reads in a row, then torn down with nothing
 * sent on chain (there is no escrow left to pay or refund from).
 */
import { BaseError } from '../../core/errors.js'
import { get, move, patch, VANISHED_CHECKS, type ServiceContext } from './context.js'
import { cancelDeploy } from './deploy.js'
import { destroyQuietly } from './destroy.js'
import { accrueCost } from './ledger.js'

/**
 * The chain did not return the service (reads, or a write refused as SERVICE_UNKNOWN). One missing read more; once
 * it has been missing long enough the service is marked SERVICE_VANISHED and moved on towards its end (true). Until
 * then a lagging RPC node is the likelier story: a retryable SERVICE_MISSING is thrown.
 */
export async function missingOnChain(ctx: ServiceContext, id: string): Promise<true> {
  const now = new Date()
  await patch(ctx, id, (r) => {
    r.missing = { since: r.missing?.since ?? now.toISOString(), checks: (r.missing?.checks ?? 0) + 1 }
  })
  const s = get(ctx, id)!
  const miss = s.missing!
  if (miss.checks < VANISHED_CHECKS || now.getTime() - Date.parse(miss.since) < ctx.config.loop.vanishedAfterMs)
    throw new BaseError(`service ${id} is not on chain`, {
      code: 'SERVICE_MISSING',
      retryable: true,
      details: [`missing since ${miss.since} (${miss.checks} read(s)); given up after ${Math.round(ctx.config.loop.vanishedAfterMs / 1000)} s`],
    })
  ctx.log.error({ serviceId: id, since: miss.since, checks: miss.checks, state: s.state }, 'the chain no longer knows this service (a reorg deeper than the confirmations, or a reset chain): destroying its deployment; there is no escrow to refund from')
  if (s.state === 'refunding' || s.state === 'terminating')
    await patch(ctx, id, (r) => {
      r.reason = 'SERVICE_VANISHED'
    })
  else
    await move(ctx, id, 'terminating', 'SERVICE_VANISHED', (r) => {
      r.reason = 'SERVICE_VANISHED'
    }, `missing since ${miss.since}`)
  return true
}

/** Run a chain write; a SERVICE_UNKNOWN answer goes through `missingOnChain` ('vanished': the service has vanished). */
export async function onChain<T>(ctx: ServiceContext, id: string, fn: () => Promise<T>): Promise<T | 'vanished'> {
  try {
    return await fn()
  } catch (err) {
    if ((err as BaseError).code !== 'SERVICE_UNKNOWN') throw err
    await missingOnChain(ctx, id)
    return 'vanished'
  }
}

/** End a vanished service here: nothing may keep running, and nothing is left on chain to pay or refund. */
export async function closeVanished(ctx: ServiceContext, id: string) {
  await cancelDeploy(ctx, id)
  await patch(ctx, id, (r) => {
    accrueCost(r)
    r.replicas = 0
    r.endpoints = []
    r.intent = { op: 'destroy', at: new Date().toISOString(), attempt: (r.intent?.attempt ?? 0) + 1, detail: 'vanished' }
  })
  await destroyQuietly(ctx, id)
  const to = get(ctx, id)!.state === 'refunding' ? 'refunded' : 'closed'
  await move(ctx, id, to, 'SERVICE_VANISHED', (r) => {
    delete r.intent
  }, 'gone from the chain: nothing to withdraw or refund')
}
