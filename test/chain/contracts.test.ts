import { maxUint256, type Account, type Chain, type Hex, type Transport, type WalletClient } from 'viem'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { serviceEscrowAbi, testStablecoinAbi } from '../../chain/contracts/abi.js'
import { decodeLog } from '../../chain/evm/decode.js'
import { TxRevertedError } from '../../chain/evm/errors.js'
import { reasonToBytes32 } from '../../chain/evm/reason.js'
import { createTxSender } from '../../chain/evm/tx.js'
import type { ChainEvent } from '../../chain/events.js'
import { createTestChain, type TestChain } from '../helpers/anvil.js'

let c: TestChain
type Wallet = WalletClient<Transport, Chain, Account>

beforeAll(async () => {
  c = await createTestChain()
  // the customer approves once so that each escrow call below is exactly one transaction at a chosen time
  await c.customer.mint(1_000_000_000n)
  await createTxSender(c.common, { publicClient: c.publicClient, walletClient: c.wallets.customer }).send({
    address: c.addresses.token,
    abi: testStablecoinAbi,
    functionName: 'approve',
    args: [c.addresses.escrow, maxUint256],
  })
})
afterAll(async () => {
  await c?.stop()
})

/** Send one escrow transaction from `wallet`, mined at `at` when given; returns its decoded events. */
async function escrow(wallet: Wallet, functionName: string, args: readonly unknown[], at?: bigint): Promise<ChainEvent[]> {
  if (at !== undefined) await c.testClient.setNextBlockTimestamp({ timestamp: at })
  const receipt = await createTxSender(c.common, { publicClient: c.publicClient, walletClient: wallet }).send({
    address: c.addresses.escrow,
    // the token's errors too, so that a revert bubbled up from transferFrom decodes
    abi: [...serviceEscrowAbi, ...testStablecoinAbi.filter((x) => x.type === 'error')],
    functionName,
    args,
  })
  return receipt.logs.filter((l) => l.address.toLowerCase() === c.addresses.escrow.toLowerCase()).map((l) => decodeLog(l, c.chainId))
}

async function reverts(p: Promise<unknown>): Promise<string | undefined> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(TxRevertedError)
  return (err as TxRevertedError).errorName
}

const balanceOf = (who: Hex) => c.publicClient.readContract({ address: c.addresses.token, abi: testStablecoinAbi, functionName: 'balanceOf', args: [who] })
const service = (id: bigint) => c.publicClient.readContract({ address: c.addresses.escrow, abi: serviceEscrowAbi, functionName: 'getService', args: [id] })
const paidUntil = (id: bigint) => c.publicClient.readContract({ address: c.addresses.escrow, abi: serviceEscrowAbi, functionName: 'paidUntil', args: [id] })
const accruedNow = (id: bigint) => c.publicClient.readContract({ address: c.addresses.escrow, abi: serviceEscrowAbi, functionName: 'accruedNow', args: [id] })

async function request(p: { blueprintId: bigint; tier?: number; ttl?: bigint; deposit: bigint }): Promise<bigint> {
  const events = await escrow(c.wallets.customer, 'requestService', [p.blueprintId, c.operatorAddress, p.tier ?? 0, '0x', p.ttl ?? 36_000n, p.deposit])
  const e = events.find((x) => x.type === 'ServiceInitiated')
  if (e?.type !== 'ServiceInitiated') throw new Error('no ServiceInitiated')
  return e.serviceId
}

describe('ServiceEscrow', () => {
  test('default: request, activate, withdraw, expiry, top-up restarts the clock, tier change, refund — to the base unit', async () => {
    const bp = await c.registerBlueprint() // 1000 / 2000 / 4000 base units per second
    const customer0 = await balanceOf(c.customerAddress)
    const operator0 = await balanceOf(c.operatorAddress)
    const escrow0 = await balanceOf(c.addresses.escrow)

    const id = await request({ blueprintId: bp, deposit: 3_600_000n })
    expect(await balanceOf(c.customerAddress)).toBe(customer0 - 3_600_000n)
    expect(await balanceOf(c.addresses.escrow)).toBe(escrow0 + 3_600_000n)
    expect((await service(id)).state).toBe(1)
    expect(await paidUntil(id)).toBe(0n)

    const t0 = (await c.now()) + 100n
    const [activated] = await escrow(c.wallets.operator, 'activate', [id], t0)
    expect(activated).toMatchObject({ type: 'ServiceActivated', serviceId: id, activatedAt: t0 })
    expect(await service(id)).toMatchObject({ state: 2, settledAt: t0, endsAt: t0 + 36_000n, ratePerHour: 3_600_000n })
    expect(await paidUntil(id)).toBe(t0 + 3600n)

    const [withdrawn] = await escrow(c.wallets.operator, 'withdraw', [id], t0 + 1800n)
    expect(withdrawn).toMatchObject({ type: 'Withdrawn', amount: 1_800_000n, operator: c.operatorAddress })
    expect(await balanceOf(c.operatorAddress)).toBe(operator0 + 1_800_000n)

    // past paid-until: everything left is earned, nothing more
    await c.mineAt(t0 + 5000n)
    expect(await accruedNow(id)).toBe(1_800_000n)
    expect(await paidUntil(id)).toBe(t0 + 3600n)

    // a top-up after expiry restarts the clock at the top-up: the unpaid gap is not charged
    const [payment] = await escrow(c.wallets.customer, 'topUp', [id, 3_600_000n], t0 + 6000n)
    expect(payment).toMatchObject({ type: 'PaymentReceived', payer: c.customerAddress, amount: 3_600_000n, balance: 3_600_000n, paidUntil: t0 + 9600n })
    expect(await service(id)).toMatchObject({ balance: 3_600_000n, earned: 1_800_000n, settledAt: t0 + 6000n })

    const [tier] = await escrow(c.wallets.customer, 'changeTier', [id, 1], t0 + 6600n)
    expect(tier).toMatchObject({ type: 'TierChanged', tier: 1, ratePerHour: 7_200_000n })
    expect(await service(id)).toMatchObject({ balance: 3_000_000n, earned: 2_400_000n, tier: 1 })
    expect(await paidUntil(id)).toBe(t0 + 6600n + 1500n)

    const events = await escrow(c.wallets.operator, 'refund', [id, reasonToBytes32('UNHEALTHY')], t0 + 7100n)
    expect(events.map((e) => e.type)).toEqual(['Withdrawn', 'Refunded'])
    expect(events[0]).toMatchObject({ amount: 3_400_000n })
    expect(events[1]).toMatchObject({ amount: 2_000_000n, reason: 'UNHEALTHY', customer: c.customerAddress })
    expect(await service(id)).toMatchObject({ state: 4, balance: 0n, earned: 0n })

    expect(await balanceOf(c.operatorAddress)).toBe(operator0 + 5_200_000n)
    expect(await balanceOf(c.customerAddress)).toBe(customer0 - 7_200_000n + 2_000_000n)
    expect(await balanceOf(c.addresses.escrow)).toBe(escrow0)

    expect(await reverts(escrow(c.wallets.operator, 'refund', [id, reasonToBytes32('UNHEALTHY')]))).toBe('AlreadyEnded')
    expect(await escrow(c.wallets.operator, 'withdraw', [id])).toEqual([])
    expect(await balanceOf(c.operatorAddress)).toBe(operator0 + 5_200_000n)
  })

  test('behavior: earnings stop at the TTL; refund after it returns the rest with TTL_REACHED', async () => {
    const bp = await c.registerBlueprint()
    const id = await request({ blueprintId: bp, ttl: 3600n, deposit: 7_200_000n })
    const operator0 = await balanceOf(c.operatorAddress)
    const customer0 = await balanceOf(c.customerAddress)
    const t0 = (await c.now()) + 10n
    await escrow(c.wallets.operator, 'activate', [id], t0)
    await c.mineAt(t0 + 5000n)
    expect(await accruedNow(id)).toBe(3_600_000n)
    const events = await escrow(c.wallets.operator, 'refund', [id, reasonToBytes32('TTL_REACHED')], t0 + 5001n)
    expect(events).toMatchObject([
      { type: 'Withdrawn', amount: 3_600_000n },
      { type: 'Refunded', amount: 3_600_000n, reason: 'TTL_REACHED' },
    ])
    expect(await balanceOf(c.operatorAddress)).toBe(operator0 + 3_600_000n)
    expect(await balanceOf(c.customerAddress)).toBe(customer0 + 3_600_000n)
  })

  test('behavior: terminate refunds the unserved balance at once; the operator withdraws what it earned later', async () => {
    const bp = await c.registerBlueprint()
    const id = await request({ blueprintId: bp, deposit: 3_600_000n })
    const customer0 = await balanceOf(c.customerAddress)
    const operator0 = await balanceOf(c.operatorAddress)
    const t0 = (await c.now()) + 10n
    await escrow(c.wallets.operator, 'activate', [id], t0)
    const events = await escrow(c.wallets.customer, 'terminate', [id], t0 + 900n)
    expect(events).toMatchObject([
      { type: 'Refunded', amount: 2_700_000n, reason: 'CUSTOMER_TERMINATED', customer: c.customerAddress },
      { type: 'ServiceTerminated', by: c.customerAddress },
    ])
    expect(await balanceOf(c.customerAddress)).toBe(customer0 + 2_700_000n)
    expect((await service(id)).state).toBe(3)
    // nothing accrues after termination
    await c.mineAt(t0 + 2000n)
    expect(await accruedNow(id)).toBe(0n)
    expect(await escrow(c.wallets.operator, 'withdraw', [id])).toMatchObject([{ type: 'Withdrawn', amount: 900_000n }])
    expect(await balanceOf(c.operatorAddress)).toBe(operator0 + 900_000n)
    expect(await reverts(escrow(c.wallets.operator, 'refund', [id, reasonToBytes32('TTL_REACHED')]))).toBe('AlreadyEnded')
    expect(await reverts(escrow(c.wallets.customer, 'topUp', [id, 1n]))).toBe('AlreadyEnded')

    // terminated before activation: the whole deposit comes back
    const id2 = await request({ blueprintId: bp, deposit: 1_234_567n })
    const before = await balanceOf(c.customerAddress)
    expect(await escrow(c.wallets.customer, 'terminate', [id2])).toMatchObject([{ type: 'Refunded', amount: 1_234_567n }, { type: 'ServiceTerminated' }])
    expect(await balanceOf(c.customerAddress)).toBe(before + 1_234_567n)
  })

  test('behavior: extreme but valid values — a TTL of 100 years and a rate of 2^128-1 activate, terminate and refund', async () => {
    const bp = await c.registerBlueprint({ pricePerHour: [2n ** 128n - 1n] })
    await c.customer.mint(2n ** 129n)
    const id = await request({ blueprintId: bp, ttl: 100n * 365n * 86_400n, deposit: 2n ** 128n - 1n })
    const t0 = (await c.now()) + 10n
    const [activated] = await escrow(c.wallets.operator, 'activate', [id], t0)
    expect(activated).toMatchObject({ type: 'ServiceActivated', endsAt: t0 + 100n * 365n * 86_400n })
    expect(await paidUntil(id)).toBe(t0 + 3600n)
    // far past paid-until and the TTL: the whole balance is earned, nothing more
    await c.mineAt(t0 + 200n * 365n * 86_400n)
    expect(await accruedNow(id)).toBe(2n ** 128n - 1n)
    expect(await escrow(c.wallets.customer, 'terminate', [id])).toMatchObject([{ type: 'Refunded', amount: 0n }, { type: 'ServiceTerminated' }])
    expect(await escrow(c.wallets.operator, 'withdraw', [id])).toMatchObject([{ type: 'Withdrawn', amount: 2n ** 128n - 1n, balance: 0n }])
  })

  test('behavior: accrual rounds down, in the customer\'s favour', async () => {
    const bp = await c.registerBlueprint({ pricePerHour: [1000n] })
    const id = await request({ blueprintId: bp, deposit: 10n })
    const t0 = (await c.now()) + 10n
    await escrow(c.wallets.operator, 'activate', [id], t0)
    expect(await paidUntil(id)).toBe(t0 + 36n) // 10 * 3600 / 1000
    await c.mineAt(t0 + 3n)
    expect(await accruedNow(id)).toBe(0n) // 3000 / 3600
    await c.mineAt(t0 + 4n)
    expect(await accruedNow(id)).toBe(1n)
    await c.mineAt(t0 + 100n)
    expect(await accruedNow(id)).toBe(10n)
  })

  test('error: access control and argument checks', async () => {
    const bp = await c.registerBlueprint()
    const id = await request({ blueprintId: bp, deposit: 1_000_000n })
    expect(await reverts(escrow(c.wallets.customer, 'activate', [id]))).toBe('NotOperator')
    expect(await reverts(escrow(c.wallets.customer, 'withdraw', [id]))).toBe('NotOperator')
    expect(await reverts(escrow(c.wallets.customer, 'refund', [id, reasonToBytes32('UNHEALTHY')]))).toBe('NotOperator')
    expect(await reverts(escrow(c.wallets.operator, 'terminate', [id]))).toBe('NotCustomer')
    expect(await reverts(escrow(c.wallets.operator, 'changeTier', [id, 1]))).toBe('NotCustomer')
    expect(await reverts(escrow(c.wallets.customer, 'changeTier', [id, 3]))).toBe('UnknownTier')
    await escrow(c.wallets.operator, 'activate', [id])
    expect(await reverts(escrow(c.wallets.operator, 'activate', [id]))).toBe('InvalidState')
    expect(await reverts(escrow(c.wallets.operator, 'activate', [999n]))).toBe('UnknownService')

    const op = c.operatorAddress
    expect(await reverts(escrow(c.wallets.customer, 'requestService', [999n, op, 0, '0x', 60n, 1n]))).toBe('UnknownBlueprint')
    expect(await reverts(escrow(c.wallets.customer, 'requestService', [bp, op, 3, '0x', 60n, 1n]))).toBe('UnknownTier')
    expect(await reverts(escrow(c.wallets.customer, 'requestService', [bp, op, 0, '0x', 60n, 0n]))).toBe('ZeroAmount')
    expect(await reverts(escrow(c.wallets.customer, 'requestService', [bp, op, 0, '0x', 0n, 1n]))).toBe('ZeroTtl')
    // bounds (README, "Contract bounds"): TTL 1 s .. 100 years, amounts 1 .. 2^128-1
    const maxTtl = 100n * 365n * 86_400n
    expect(await reverts(escrow(c.wallets.customer, 'requestService', [bp, op, 0, '0x', maxTtl + 1n, 1n]))).toBe('TtlTooLong')
    expect(await reverts(escrow(c.wallets.customer, 'requestService', [bp, op, 0, '0x', 2n ** 64n - 1n, 1n]))).toBe('TtlTooLong')
    expect(await reverts(escrow(c.wallets.customer, 'requestService', [bp, op, 0, '0x', 60n, 2n ** 128n]))).toBe('AmountTooLarge')
    expect(await reverts(escrow(c.wallets.customer, 'topUp', [id, 2n ** 256n - 1n]))).toBe('AmountTooLarge')
    // the developer never approved the escrow: the token's own error comes through
    expect(await reverts(escrow(c.wallets.developer, 'requestService', [bp, op, 0, '0x', 60n, 1n]))).toBe('InsufficientAllowance')
  })
})

describe('BlueprintRegistry', () => {
  test('error: registration checks', async () => {
    await expect(c.registerBlueprint({ pricePerHour: [1n, 0n] })).rejects.toMatchObject({ errorName: 'ZeroPrice' })
    await expect(c.registerBlueprint({ pricePerHour: [] })).rejects.toMatchObject({ errorName: 'NoPrices' })
    await expect(c.registerBlueprint({ sources: [] })).rejects.toMatchObject({ errorName: 'NoSources' })
    await expect(c.registerBlueprint({ name: '' })).rejects.toMatchObject({ errorName: 'EmptyName' })
    await expect(c.registerBlueprint({ pricePerHour: [1n, 2n ** 128n] })).rejects.toMatchObject({ errorName: 'PriceTooHigh' })
    await expect(c.registerBlueprint({ pricePerHour: Array(17).fill(1n) })).rejects.toMatchObject({ errorName: 'TooManyTiers' })
    expect(await c.registerBlueprint({ pricePerHour: [...Array(15).fill(1n), 2n ** 128n - 1n] })).toBeGreaterThan(0n)
  })
})
