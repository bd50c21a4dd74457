/**
 * Property tests of the contracts on a real anvil, driven by fast-check over extreme values (0, 1, 2^63, 2^64-1,
 * 2^128-1, 2^128, 2^255, 2^256-1, mixed with random ones) for amounts, prices, TTLs, tiers and the time between
 * calls. Every run registers a blueprint, requests two services, activates, tops up, changes tier and withdraws,
 * then ends one service by `terminate` (and a later withdraw) and the other by `refund`. The invariants:
 * - each call succeeds exactly when its values lie within the documented bounds (README, "Contract bounds"), and
 *   `activate`, `withdraw`, `terminate` and `refund` of a funded service never revert;
 * - token balances of customer + operator + escrow are conserved to the base unit, the escrow ends where it
 *   started (nothing locked, nothing stranded), and the operator earned exactly what the pro-rata model says;
 * - the payment facts carried by the events equal the escrow's records (`getServices`) and its `paidUntil` view.
 * Chain state is reset between runs with evm_snapshot / evm_revert. Run counts are printed.
 */
import fc from 'fast-check'
import { decodeFunctionResult, encodeFunctionData, maxUint256, type Hex } from 'viem'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { blueprintRegistryAbi, serviceEscrowAbi, serviceStates, testStablecoinAbi } from '../../chain/contracts/abi.js'
import { maxAmount, maxRatePerHour, maxTiers, maxTtlSeconds } from '../../chain/evm/bounds.js'
import { decodeLog } from '../../chain/evm/decode.js'
import { reasonToBytes32 } from '../../chain/evm/reason.js'
import { accruedFromFacts, applyEventToFacts, paidUntilFromFacts, verifySlice, type PaymentFacts } from '../../daemon/paymentFacts.js'
import { createTestChain, type TestChain } from '../helpers/anvil.js'
import { createRawRpc, wideCalldata, type RawReceipt, type RawRpc } from '../helpers/rawRpc.js'

const RUNS = Number(process.env.PROPERTY_RUNS ?? 1000)

let c: TestChain
let rpc: RawRpc
let who: { customer: Hex; operator: Hex; developer: Hex }
let baseBlueprint: bigint
const basePrices = [1n, maxRatePerHour, 3_600_000n]
let t0: bigint

const counts: Record<string, { ok: number; reverted: number }> = {}
const count = (fn: string, r: RawReceipt) => {
  const x = (counts[fn] ??= { ok: 0, reverted: 0 })
  if (r.status === 'success') x.ok++
  else x.reverted++
}

beforeAll(async () => {
  c = await createTestChain()
  rpc = createRawRpc(c.rpcUrl)
  who = { customer: c.customerAddress, operator: c.operatorAddress, developer: c.wallets.developer.account.address }
  const token = c.addresses.token
  await rpc.send(who.customer, token, encodeFunctionData({ abi: testStablecoinAbi, functionName: 'mint', args: [who.customer, 2n ** 200n] }))
  await rpc.send(who.customer, token, encodeFunctionData({ abi: testStablecoinAbi, functionName: 'approve', args: [c.addresses.escrow, maxUint256] }))
  baseBlueprint = await c.registerBlueprint({ pricePerHour: basePrices })
  t0 = (await c.now()) + 10n
  await rpc.useTimestampInterval()
}, 60_000)
afterAll(async () => {
  await c?.stop()
})

// ------------------------------------------------------------------ arbitraries
const extremes = [0n, 1n, 2n ** 63n, 2n ** 64n - 1n, 2n ** 128n - 1n, 2n ** 128n, 2n ** 255n, 2n ** 256n - 1n]
const amount = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...extremes) },
  { weight: 3, arbitrary: fc.bigInt({ min: 1n, max: 10n ** 15n }) },
  { weight: 1, arbitrary: fc.bigInt({ min: 0n, max: 2n ** 256n - 1n }) },
)
const validPrice = fc.oneof(fc.constantFrom(1n, 2n ** 63n, 2n ** 64n - 1n, maxRatePerHour), fc.bigInt({ min: 1n, max: 10n ** 12n }))
const prices = fc.oneof(fc.array(validPrice, { minLength: 1, maxLength: 4 }), fc.array(amount, { minLength: 0, maxLength: maxTiers + 1 }))
const ttl = fc.oneof(
  { weight: 2, arbitrary: fc.constantFrom(...extremes, maxTtlSeconds, maxTtlSeconds + 1n) },
  { weight: 2, arbitrary: fc.bigInt({ min: 1n, max: 2n ** 33n }) },
)
const tier = fc.oneof(fc.bigInt({ min: 0n, max: 3n }), fc.constantFrom(15n, 16n, 255n, 256n, 2n ** 63n, 2n ** 256n - 1n))
const gap = fc.oneof(fc.constantFrom(1n, 3599n, 3600n, 3601n, 86_400n, maxTtlSeconds, maxTtlSeconds + 1n, 2n ** 32n), fc.bigInt({ min: 1n, max: 2n ** 34n }))
const lastGap = fc.oneof({ weight: 4, arbitrary: gap }, { weight: 1, arbitrary: fc.constantFrom(2n ** 40n, 2n ** 62n) })

// ------------------------------------------------------------------ the contract, modelled
type Model = { state: 'requested' | 'active' | 'terminated' | 'closed'; rate: bigint; balance: bigint; earned: bigint; settledAt: bigint; endsAt: bigint; ttl: bigint }
function settle(m: Model, now: bigint): void {
  if (m.state !== 'active') return
  const t = now > m.endsAt ? m.endsAt : now
  if (t <= m.settledAt) return
  let accrued = (m.rate * (t - m.settledAt)) / 3600n
  if (accrued > m.balance) accrued = m.balance
  m.balance -= accrued
  m.earned += accrued
  m.settledAt = t
}

const balanceCall = (a: Hex) => ({ to: c.addresses.token, data: encodeFunctionData({ abi: testStablecoinAbi, functionName: 'balanceOf', args: [a] }) })
const servicesCall = (ids: bigint[]) => ({ to: c.addresses.escrow, data: encodeFunctionData({ abi: serviceEscrowAbi, functionName: 'getServices', args: [ids] }) })
const decodeBalance = (data: Hex) => decodeFunctionResult({ abi: testStablecoinAbi, functionName: 'balanceOf', data })
const decodeServices = (data: Hex) => decodeFunctionResult({ abi: serviceEscrowAbi, functionName: 'getServices', data }).map((s) => ({ ...s, state: serviceStates[s.state]! }))

/** Token balances of customer, operator and escrow, and (optionally) escrow records, in one JSON-RPC batch. */
async function balancesAnd(ids: bigint[] = []) {
  const r = await rpc.ethCalls([balanceCall(who.customer), balanceCall(who.operator), balanceCall(c.addresses.escrow), ...(ids.length ? [servicesCall(ids)] : [])])
  return { customer: decodeBalance(r[0]!), operator: decodeBalance(r[1]!), escrow: decodeBalance(r[2]!), services: ids.length ? decodeServices(r[3]!) : [] }
}

const escrowTx = (from: Hex, data: Hex, at: bigint) => rpc.send(from, c.addresses.escrow, data, at)
const events = (r: RawReceipt) => r.logs.filter((l) => l.address.toLowerCase() === c.addresses.escrow.toLowerCase()).map((l) => decodeLog(l, c.chainId))

describe('contracts: properties over extreme values (anvil, fast-check)', () => {
  test(`property: ${RUNS} runs — a funded service can always be terminated and refunded; balances add up to the base unit`, async () => {
    let snap = await rpc.snapshot()
    let runs = 0
    const t0ms = performance.now()
    await fc.assert(
      fc.asyncProperty(
        fc.record({ prices, tier, ttl, deposit: amount, topUpA: amount, topUpB: amount, newTier: tier, gaps: fc.tuple(gap, gap, gap, gap, lastGap) }),
        async (a) => {
          runs++
          try {
            const before = await balancesAnd()
            let now = t0
            const facts = new Map<bigint, PaymentFacts>()
            const apply = (r: RawReceipt) => {
              for (const e of events(r)) if ('serviceId' in e) facts.set(e.serviceId, applyEventToFacts(facts.get(e.serviceId), e))
            }

            // registerBlueprint: succeeds iff 1..16 prices, each 1 .. 2^128-1
            const reg = await rpc.send(
              who.developer,
              c.addresses.registry,
              encodeFunctionData({
                abi: blueprintRegistryAbi,
                functionName: 'registerBlueprint',
                args: ['p', [{ kind: 0, uri: 'http://x/y', digest: `0x${'ab'.repeat(32)}` }], { vcpuMilli: 1, memoryMiB: 1, storageGiB: 0, gpuCount: 0, gpuModel: '', ports: [] }, a.prices],
              }),
              ++now,
            )
            count('registerBlueprint', reg)
            const regOk = a.prices.length >= 1 && a.prices.length <= maxTiers && a.prices.every((p) => p >= 1n && p <= maxRatePerHour)
            expect(reg.status).toBe(regOk ? 'success' : 'reverted')
            const bpPrices = regOk ? a.prices : basePrices
            const bp = regOk ? (decodeLog(reg.logs[0]!, c.chainId) as { blueprintId: bigint }).blueprintId : baseBlueprint

            // requestService: succeeds iff TTL 1 .. 100 years, deposit 1 .. 2^128-1, tier < tiers (uint8/uint64 wider values: ABI revert)
            const request = async (tierIx: bigint, ttlS: bigint, deposit: bigint) => {
              const r = await escrowTx(
                who.customer,
                wideCalldata('requestService(uint64,address,uint8,bytes,uint64,uint256)', ['uint64', 'address', 'uint256', 'bytes', 'uint256', 'uint256'], [bp, who.operator, tierIx, '0x', ttlS, deposit]),
                ++now,
              )
              count('requestService', r)
              return r
            }
            const reqOk = a.tier < BigInt(bpPrices.length) && a.ttl >= 1n && a.ttl <= maxTtlSeconds && a.deposit >= 1n && a.deposit <= maxAmount
            let tierIx = a.tier
            let ttlS = a.ttl
            let deposit = a.deposit
            let r = await request(a.tier, a.ttl, a.deposit)
            expect(r.status).toBe(reqOk ? 'success' : 'reverted')
            if (!reqOk) {
              // a refused request moved nothing; carry on with the nearest valid one so that every run has funded services
              tierIx = a.tier % BigInt(bpPrices.length)
              ttlS = a.ttl < 1n ? 1n : a.ttl > maxTtlSeconds ? maxTtlSeconds : a.ttl
              deposit = a.deposit < 1n ? 1n : a.deposit > maxAmount ? maxAmount : a.deposit
              r = await request(tierIx, ttlS, deposit)
              expect(r.status).toBe('success')
            }
            apply(r)
            const idA = (events(r)[0] as { serviceId: bigint }).serviceId
            const r2 = await request(tierIx, ttlS, deposit)
            expect(r2.status).toBe('success')
            apply(r2)
            const idB = idA + 1n
            const rate = bpPrices[Number(tierIx)]!
            const model = new Map<bigint, Model>([
              [idA, { state: 'requested', rate, balance: deposit, earned: 0n, settledAt: 0n, endsAt: 0n, ttl: ttlS }],
              [idB, { state: 'requested', rate, balance: deposit, earned: 0n, settledAt: 0n, endsAt: 0n, ttl: ttlS }],
            ])
            let paidIn = 2n * deposit
            let operatorGot = 0n
            let customerGot = 0n

            // activate: always succeeds for a requested service
            now += a.gaps[0]
            for (const id of [idA, idB]) {
              const x = await escrowTx(who.operator, encodeFunctionData({ abi: serviceEscrowAbi, functionName: 'activate', args: [id] }), ++now)
              count('activate', x)
              expect(x.status).toBe('success')
              apply(x)
              const m = model.get(id)!
              Object.assign(m, { state: 'active', settledAt: now, endsAt: now + m.ttl })
            }

            // topUp: succeeds iff 1 .. 2^128-1 and the balance after settling stays within 2^128-1
            now += a.gaps[1]
            for (const [id, amt] of [[idA, a.topUpA], [idB, a.topUpB]] as const) {
              const m = model.get(id)!
              const at = ++now
              const probe = { ...m }
              settle(probe, at)
              const ok = amt >= 1n && amt <= maxAmount && probe.balance + amt <= maxAmount
              const x = await escrowTx(who.customer, encodeFunctionData({ abi: serviceEscrowAbi, functionName: 'topUp', args: [id, amt] }), at)
              count('topUp', x)
              expect(x.status).toBe(ok ? 'success' : 'reverted')
              if (ok) {
                apply(x)
                Object.assign(m, probe)
                m.balance += amt
                paidIn += amt
              }
            }

            // changeTier: succeeds iff the tier is priced
            now += a.gaps[2]
            for (const id of [idA, idB]) {
              const m = model.get(id)!
              const at = ++now
              const ok = a.newTier < BigInt(bpPrices.length)
              const x = await escrowTx(who.customer, wideCalldata('changeTier(uint64,uint8)', ['uint64', 'uint256'], [id, a.newTier]), at)
              count('changeTier', x)
              expect(x.status).toBe(ok ? 'success' : 'reverted')
              if (ok) {
                apply(x)
                settle(m, at)
                m.rate = bpPrices[Number(a.newTier)]!
              }
            }

            // withdraw: always succeeds; pays exactly what was earned
            now += a.gaps[3]
            for (const id of [idA, idB]) {
              const m = model.get(id)!
              const at = ++now
              const x = await escrowTx(who.operator, encodeFunctionData({ abi: serviceEscrowAbi, functionName: 'withdraw', args: [id] }), at)
              count('withdraw', x)
              expect(x.status).toBe('success')
              apply(x)
              const probe = { ...m }
              settle(probe, at)
              // nothing to pay: nothing changes (not even settledAt), so that the events tell every change
              if (probe.earned > 0n) Object.assign(m, probe)
              operatorGot += m.earned
              m.earned = 0n
            }

            // the facts carried by the events equal the escrow's records and views
            // one batch: getServices (with an id above 2^64-1), paidUntil, accruedNow, getService, prices
            const viewCall = (functionName: 'paidUntil' | 'accruedNow' | 'getService', id: bigint) => {
              count(functionName, { status: 'success', logs: [], blockNumber: 0n })
              return { to: c.addresses.escrow, data: encodeFunctionData({ abi: serviceEscrowAbi, functionName, args: [id] } as never) }
            }
            count('getServices', { status: 'success', logs: [], blockNumber: 0n })
            count('prices', { status: 'success', logs: [], blockNumber: 0n })
            const [rawLive, rawPaid, rawAccrued, rawOne, rawPrices] = await rpc.ethCalls([
              servicesCall([idA, idB, 2n ** 64n]),
              viewCall('paidUntil', idA),
              viewCall('accruedNow', idB),
              viewCall('getService', idB),
              { to: c.addresses.registry, data: encodeFunctionData({ abi: blueprintRegistryAbi, functionName: 'prices', args: [bp] }) },
            ])
            const live = decodeServices(rawLive!)
            expect(live[2]!.state).toBe('none')
            expect(verifySlice([idA, idB].map((id) => ({ serviceId: String(id), facts: facts.get(id) })), live.slice(0, 2))).toEqual([])
            for (const [i, id] of [idA, idB].entries()) expect(live[i]).toMatchObject({ balance: model.get(id)!.balance, settledAt: model.get(id)!.settledAt, earned: 0n })
            expect(decodeFunctionResult({ abi: serviceEscrowAbi, functionName: 'paidUntil', data: rawPaid! })).toBe(paidUntilFromFacts(facts.get(idA)))
            // the views at the last block's time (`now`): what a settlement would move, from the facts alone
            expect(decodeFunctionResult({ abi: serviceEscrowAbi, functionName: 'accruedNow', data: rawAccrued! })).toBe(accruedFromFacts(facts.get(idB), now))
            expect(decodeFunctionResult({ abi: serviceEscrowAbi, functionName: 'getService', data: rawOne! })).toEqual({ ...live[1]!, state: 2 })
            expect(decodeFunctionResult({ abi: blueprintRegistryAbi, functionName: 'prices', data: rawPrices! })).toEqual(bpPrices)

            // terminate (customer) never reverts for an open service; the operator then withdraws what it earned
            now += a.gaps[4]
            {
              const m = model.get(idA)!
              const at = ++now
              const x = await escrowTx(who.customer, encodeFunctionData({ abi: serviceEscrowAbi, functionName: 'terminate', args: [idA] }), at)
              count('terminate', x)
              expect(x.status).toBe('success')
              apply(x)
              settle(m, at)
              customerGot += m.balance
              m.balance = 0n
              m.state = 'terminated'
              const w = await escrowTx(who.operator, encodeFunctionData({ abi: serviceEscrowAbi, functionName: 'withdraw', args: [idA] }), ++now)
              count('withdraw', w)
              expect(w.status).toBe('success')
              apply(w)
              operatorGot += m.earned
              m.earned = 0n
            }
            // refund (operator) never reverts for an open service
            {
              const m = model.get(idB)!
              const at = ++now
              const x = await escrowTx(who.operator, encodeFunctionData({ abi: serviceEscrowAbi, functionName: 'refund', args: [idB, reasonToBytes32('UNHEALTHY')] }), at)
              count('refund', x)
              expect(x.status).toBe('success')
              apply(x)
              settle(m, at)
              operatorGot += m.earned
              customerGot += m.balance
              m.state = 'closed'
            }

            const after = await balancesAnd([idA, idB])
            // nothing locked: the escrow holds what it held before; nothing created or lost: the sum is conserved
            expect(after.escrow).toBe(before.escrow)
            expect(after.customer + after.operator + after.escrow).toBe(before.customer + before.operator + before.escrow)
            expect(after.operator - before.operator).toBe(operatorGot)
            expect(before.customer - after.customer).toBe(paidIn - customerGot)
            const ended = after.services
            count('getServices', { status: 'success', logs: [], blockNumber: 0n })
            expect(ended.map((s) => [s.state, s.balance, s.earned])).toEqual([
              ['terminated', 0n, 0n],
              ['closed', 0n, 0n],
            ])
            expect(verifySlice([idA, idB].map((id) => ({ serviceId: String(id), facts: facts.get(id) })), ended)).toEqual([])
          } finally {
            await rpc.revert(snap)
            snap = await rpc.snapshot()
          }
        },
      ),
      { numRuns: RUNS },
    )
    const lines = Object.entries(counts).map(([fn, x]) => `${fn}=${x.ok + x.reverted} (ok ${x.ok}, reverted ${x.reverted})`)
    console.log(`contract properties: runs=${runs} rpc_requests=${rpc.requests} seconds=${((performance.now() - t0ms) / 1000).toFixed(0)}\n  ${lines.join('\n  ')}`)
    for (const fn of ['registerBlueprint', 'requestService', 'activate', 'topUp', 'changeTier', 'withdraw', 'terminate', 'refund', 'getServices', 'getService', 'paidUntil', 'accruedNow', 'prices'])
      expect(counts[fn]!.ok + counts[fn]!.reverted).toBeGreaterThanOrEqual(RUNS)
  }, 1_800_000)
})
