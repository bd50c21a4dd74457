/**
 * What the daemon measures beyond its parts' own metrics: every target's provisioner calls (instrumented once per
 * target name), replicas wanted vs ready, and money summed over the services of the state (gauges computed at
 * scrape time from the store, so they are right after a restart too).
 */
import type { Common } from '../core/common.js'
import { tokenToUsd, usd } from '../core/money.js'
import { instrumentProvisioner, type InstrumentedProvisioner } from '../provisioners/instrument.js'
import { moneyOf, type TokenInfo } from './money.js'
import type { Target, TargetRegistry } from './ports.js'
import type { Store } from './store.js'

export type ObservedTarget = Target & { provisioner: InstrumentedProvisioner }
export type ObservedTargets = Omit<TargetRegistry, 'list' | 'byName'> & { list(): readonly ObservedTarget[]; byName(name: string): ObservedTarget | undefined }

/** The same registry with each target's provisioner measured under the target's name. */
export function instrumentTargets(common: Common, targets: TargetRegistry): ObservedTargets {
  const list: ObservedTarget[] = targets.list().map((t) => ({ ...t, provisioner: instrumentProvisioner(common, t.name, t.provisioner) }))
  const replicas = (kind: 'wanted' | 'ready') => () => {
    for (const t of list) g[kind].set(t.provisioner.replicas()[kind], { target: t.name })
  }
  const g = {
    wanted: common.metrics.gauge('bpo_replicas_wanted', 'Replicas asked of each target, as it last reported', { labels: ['target'], collect: () => replicas('wanted')() }),
    ready: common.metrics.gauge('bpo_replicas_ready', 'Replicas ready on each target, as it last reported', { labels: ['target'], collect: () => replicas('ready')() }),
  }
  return {
    list: () => list,
    byName: (name) => list.find((t) => t.name === name),
    provisioners: () => targets.provisioners(),
    close: () => targets.close(),
  }
}

/** Money gauges over every service in the state; `now` gives chain time in unix seconds. */
export function registerMoneyGauges(common: Common, p: { store: Store; token: TokenInfo; now(): bigint }): void {
  let cache: { at: number; v: Record<string, number> } | undefined
  const totals = (): Record<string, number> => {
    if (cache && Date.now() - cache.at < 1000) return cache.v
    let paid = 0n
    let earned = 0n
    let refunded = 0n
    let escrowed = 0n
    let cost = usd('0')
    let margin = usd('0')
    let income = usd('0')
    let costRate = usd('0')
    const now = p.now()
    for (const s of Object.values(p.store.read().services)) {
      const m = moneyOf(s, now, p.token)
      paid += BigInt(m.paid)
      earned += BigInt(m.earned)
      refunded += BigInt(m.refunded)
      escrowed += BigInt(m.escrowed)
      cost = cost.plus(m.cloudCostUsd)
      margin = margin.plus(m.marginUsd)
      income = income.plus(m.incomeUsdPerHour)
      costRate = costRate.plus(m.costUsdPerHour)
    }
    const v = {
      paid: Number(paid),
      earned: Number(earned),
      refunded: Number(refunded),
      escrowed: Number(escrowed),
      cost: cost.toNumber(),
      margin: margin.toNumber(),
      earnedUsd: tokenToUsd(earned, p.token.decimals, p.token.usdPerToken).toNumber(),
      income: income.toNumber(),
      costRate: costRate.toNumber(),
    }
    cache = { at: Date.now(), v }
    return v
  }
  const gauge = (name: string, help: string, key: string) => {
    const g = common.metrics.gauge(name, help, { collect: () => g.set(totals()[key]!) })
  }
  gauge('bpo_paid_base_units', 'Paid by customers into the escrow, token base units (services in the state file)', 'paid')
  gauge('bpo_escrowed_base_units', 'Paid and neither earned nor refunded yet, token base units', 'escrowed')
  gauge('bpo_earned_base_units', 'Earned by the operator (withdrawn, or accrued while running), token base units', 'earned')
  gauge('bpo_refunded_base_units', 'Refunded to customers, token base units', 'refunded')
  gauge('bpo_cloud_cost_usd', 'What the capacity cost the operator so far, USD', 'cost')
  gauge('bpo_margin_usd', 'Earned (USD) minus the capacity cost, so far, USD', 'margin')
  gauge('bpo_income_usd_per_hour', 'What running, paid services bring per hour, USD', 'income')
  gauge('bpo_cloud_cost_usd_per_hour', 'What the running capacity costs per hour, USD', 'costRate')
}
