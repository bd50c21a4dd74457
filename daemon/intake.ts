/**
 * Intake: apply a batch of confirmed chain events to the state, exactly once per event identity. Pure state
 * changes only — side effects (provisioning, transactions) are driven afterwards from the recorded state.
 */
import type { Logger } from '../core/common.js'
import { formatBaseUnits } from '../core/money.js'
import { eventId, type ChainEvent } from '../chain/events.js'
import { requestProblems } from '../chain/evm/decode.js'
import { TierNames } from '../core/spec.js'
import { applyEventToFacts } from './paymentFacts.js'
import { transition, type ServiceRecord, type State } from './state.js'

export type IntakeContext = {
  /** This operator's address (lowercase); requests for other operators are ignored. */
  operator: string
  chainId: number
  logger: Logger
  now?: Date
  /** The payment token, so logged amounts carry their unit (without it: "<n> base units"). */
  token?: { symbol: string; decimals: number }
}

/** An amount for a log line, always with its unit. */
export function amountText(v: bigint, token?: { symbol: string; decimals: number }): string {
  return token ? `${formatBaseUnits(v, token.decimals)} ${token.symbol}` : `${v} base units`
}

/** DNS-safe deployment id for a service: every resource is named by it. */
export function deploymentIdOf(chainId: number, serviceId: bigint | string): string {
  return `bp-${chainId}-${serviceId}`
}

const add = (a: string, b: bigint) => (BigInt(a) + b).toString()

/**
 * Apply events in order; returns the ids of services whose state changed. Every escrow event also updates the
 * service's payment facts (`chain`), from which paid-until is computed without reading the chain. A request whose
 * values lie outside the contract's bounds (TTL, deposit, rate, tier) is recorded with its problems, which the quote
 * step turns into a MALFORMED_REQUEST refund.
 */
export function applyEvents(state: State, events: readonly ChainEvent[], ctx: IntakeContext): Set<string> {
  const touched = new Set<string>()
  const now = ctx.now ?? new Date()
  for (const e of events) {
    const id = eventId(e)
    if (state.processed[id]) {
      ctx.logger.debug({ eventId: id, type: e.type }, 'event already acted on; skipped')
      continue
    }
    state.processed[id] = e.blockNumber.toString()
    const log = ctx.logger.child({ eventId: id, type: e.type, block: e.blockNumber.toString() })
    if (e.type === 'BlueprintRegistered') {
      log.info({ blueprintId: e.blueprintId.toString(), name: e.name }, 'blueprint registered')
      continue
    }
    if (e.type === 'ServiceInitiated') {
      if (e.operator.toLowerCase() !== ctx.operator) continue
      const key = e.serviceId.toString()
      if (state.services[key]) {
        log.warn({ serviceId: key }, 'service already known; event ignored')
        continue
      }
      const at = now.toISOString()
      const s: ServiceRecord = {
        serviceId: key,
        blueprintId: e.blueprintId.toString(),
        chainId: e.chainId,
        customer: e.customer.toLowerCase(),
        tierIndex: e.tier,
        ...(e.preferences.ok && { preferences: e.preferences.value }),
        ttlSeconds: e.ttlSeconds.toString(),
        deposit: e.deposit.toString(),
        deploymentId: deploymentIdOf(e.chainId, e.serviceId),
        state: 'requested',
        replicas: 0,
        endpoints: [],
        health: { failures: 0, restarts: 0 },
        ledger: { paid: e.deposit.toString(), earned: '0', withdrawn: '0', refunded: '0', cloudCostUsd: '0' },
        createdAt: at,
        updatedAt: at,
        history: [{ at, from: null, to: 'requested', cause: 'ServiceInitiated', eventId: id }],
        chain: applyEventToFacts(undefined, e),
      }
      const problems = requestProblems(e)
      if (e.tier >= TierNames.length && !problems.some((p) => p.startsWith('tier:')))
        problems.push(`tier: got ${e.tier}, expected 0 (basic), 1 (standard) or 2 (premium)`)
      if (!e.preferences.ok) problems.unshift(`preferences: ${e.preferences.error}`)
      if (problems.length) {
        s.problems = problems
        log.warn({ serviceId: key, problems }, 'malformed request; it will be refunded')
      }
      state.services[key] = s
      touched.add(key)
      log.info({ serviceId: key, blueprintId: s.blueprintId, tier: e.tier, deposit: amountText(e.deposit, ctx.token) }, 'requested')
      continue
    }
    const s = state.services[e.serviceId.toString()]
    if (!s) continue // another operator's service
    touched.add(s.serviceId)
    s.updatedAt = now.toISOString()
    s.chain = applyEventToFacts(s.chain, e)
    switch (e.type) {
      case 'ServiceActivated':
        break
      case 'PaymentReceived':
        s.ledger.paid = add(s.ledger.paid, e.amount)
        log.info({ serviceId: s.serviceId, amount: amountText(e.amount, ctx.token), paidUntil: new Date(Number(e.paidUntil) * 1000).toISOString() }, 'payment received')
        break
      case 'TierChanged':
        s.tierIndex = e.tier
        log.info({ serviceId: s.serviceId, tier: e.tier }, 'tier changed')
        break
      case 'Withdrawn':
        s.ledger.withdrawn = add(s.ledger.withdrawn, e.amount)
        s.ledger.earned = add(s.ledger.earned, e.amount)
        break
      case 'Refunded':
        s.ledger.refunded = add(s.ledger.refunded, e.amount)
        break
      case 'ServiceTerminated':
        if (s.state === 'active' || s.state === 'scaled-to-zero' || s.state === 'requested' || s.state === 'provisioning') {
          s.reason = 'CUSTOMER_TERMINATED' // only when it ends the service: a recorded rejection keeps its reason
          transition(s, 'terminating', 'ServiceTerminated', { eventId: id, now })
          log.info({ serviceId: s.serviceId }, 'terminated by the customer')
        }
        break
    }
  }
  return touched
}

/**
 * Forget the identities of events buried deeper than `keepBlocks` under the cursor: the follower never rewinds that
 * far (its reorg window is far smaller), and the state file must not grow with every event of months of operation.
 */
export function pruneProcessed(state: State, cursorBlock: bigint, keepBlocks = 10_000n): number {
  const floor = cursorBlock - keepBlocks
  let n = 0
  for (const [id, block] of Object.entries(state.processed)) {
    if (BigInt(block) < floor) {
      delete state.processed[id]
      n++
    }
  }
  return n
}
