/**
 * JSON views of the daemon's state for the API and the dashboard: a service's summary (state, money, paid-until),
 * its full view (timeline, decision, spec, ledger), and each target's capacity, use and last error.
 */
import type { OperatorConfig } from '../config.js'
import { moneyOf } from '../money.js'
import type { ObservedTarget } from '../observe.js'
import type { ServiceRecord, State } from '../state.js'

const LIVE = ['provisioning', 'active', 'scaled-to-zero', 'terminating']

export function serviceSummary(s: ServiceRecord, nowSec: bigint, config: OperatorConfig) {
  const paidUntil = s.chain?.paidUntil ? Number(s.chain.paidUntil) : null
  const paidExpired = paidUntil !== null && BigInt(paidUntil) <= nowSec
  return {
    serviceId: s.serviceId,
    blueprintId: s.blueprintId,
    customer: s.customer,
    state: s.state,
    /** The payment ran out although the record still says active (until the next reconcile pass scales it down). */
    paymentExpired: paidExpired && (s.state === 'active' || s.state === 'provisioning'),
    tier: s.tier ?? null,
    replicas: s.replicas,
    endpoints: s.endpoints,
    target: s.quote?.target ?? null,
    hourlyUsd: s.quote?.totalHourlyUsd ?? null,
    paidUntil: paidUntil !== null ? isoOfUnix(paidUntil) : null,
    endsAt: s.chain?.endsAt && s.chain.endsAt !== '0' ? isoOfUnix(Number(s.chain.endsAt)) : null,
    reason: s.reason ?? null,
    healthy: s.health.healthy ?? null,
    money: moneyOf(s, nowSec, config.token),
    token: { symbol: config.token.symbol, decimals: config.token.decimals },
    updatedAt: s.updatedAt,
    lastChange: s.history[s.history.length - 1] ?? null,
  }
}

export function serviceView(s: ServiceRecord, nowSec: bigint, config: OperatorConfig) {
  const decision = (s as ServiceRecord & { decision?: unknown }).decision
  return {
    ...serviceSummary(s, nowSec, config),
    deploymentId: s.deploymentId,
    tierIndex: s.tierIndex,
    ttlSeconds: s.ttlSeconds,
    deposit: s.deposit,
    problems: s.problems ?? [],
    spec: s.spec ?? null,
    source: s.source ?? null,
    quote: s.quote ?? null,
    decision: decision ?? null,
    preferences: s.preferences ?? null,
    health: s.health,
    intent: s.intent ?? null,
    chain: s.chain ?? null,
    ledger: s.ledger,
    createdAt: s.createdAt,
    timeline: s.history,
  }
}

export function targetView(t: ObservedTarget, st: Readonly<State>, usedOn?: (name: string) => { vcpu: number; memoryGiB: number; storageGiB: number }) {
  let used = usedOn?.(t.name)
  let services = 0
  const own = { vcpu: 0, memoryGiB: 0, storageGiB: 0 }
  for (const o of Object.values(st.services)) {
    if (o.quote?.target !== t.name || !o.spec || !LIVE.includes(o.state)) continue
    const n = Math.max(o.replicas, o.spec.replicas)
    own.vcpu += o.spec.vcpu * n
    own.memoryGiB += o.spec.memoryGiB * n
    own.storageGiB += o.spec.storageGiB
    services++
  }
  used ??= own
  const offer = t.kind === 'own' ? t.offersFor({} as never)[0] : undefined
  const cap = t.capacity ?? null
  return {
    name: t.name,
    kind: t.kind,
    provider: t.provider,
    provisioner: t.provisioner.id,
    region: offer?.region ?? null,
    placement: t.placement ?? null,
    sourceKinds: [...t.sourceKinds],
    hourlyUsd: offer ? offer.hourlyUsd.toFixed() : null,
    capacity: cap,
    used,
    free: cap ? { vcpu: cap.vcpu - used.vcpu, memoryGiB: cap.memoryGiB - used.memoryGiB, storageGiB: cap.storageGiB - used.storageGiB } : null,
    services,
    replicas: t.provisioner.replicas(),
    // what the machine allows (the local target: whether podman runs containers, or why not)
    ...(t.provisioner.capabilities && { capabilities: t.provisioner.capabilities() }),
    lastError: t.provisioner.lastError() ?? null,
  }
}

/** Unix seconds as ISO time; a time past what a Date holds (the contracts saturate at 2^64−1 s) is "never". */
function isoOfUnix(sec: number): string {
  const ms = sec * 1000
  return Number.isFinite(ms) && Math.abs(ms) <= 8.64e15 ? new Date(ms).toISOString() : 'never'
}
