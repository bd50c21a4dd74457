import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { createEscrowClient, type EscrowClient } from '../../chain/evm/escrow.js'
import { createEvmPublicClient, createEvmWalletClient } from '../../chain/evm/clients.js'
import { createTestChain, defaultPrices, type TestChain } from '../helpers/anvil.js'

let c: TestChain
let operator: EscrowClient
beforeAll(async () => {
  c = await createTestChain()
  operator = createEscrowClient(c.common, { publicClient: c.publicClient, walletClient: c.wallets.operator, escrow: c.addresses.escrow, registry: c.addresses.registry })
})
afterAll(async () => {
  await c?.stop()
})

describe('createEscrowClient', () => {
  test('default: reads blueprints and services in daemon units', async () => {
    const bp = await c.registerBlueprint({
      name: 'mixed',
      sources: [
        { kind: 'container', image: 'localhost:5000/echo', digest: `sha256:${'cd'.repeat(32)}` },
        { kind: 0, uri: 'ftp://example.com/x', digest: `0x${'ab'.repeat(32)}` },
      ],
    })
    const b = await operator.getBlueprint(bp)
    expect(b).toMatchObject({ id: bp, name: 'mixed', developer: c.wallets.developer.account.address, pricePerHour: defaultPrices })
    expect(b!.requirements).toEqual({ vcpu: 0.5, memoryGiB: 0.25, storageGiB: 1, gpu: { count: 0, model: undefined }, ports: [8080] })
    expect(b!.sources[0]).toEqual({ ok: true, source: { kind: 'container', image: 'localhost:5000/echo', digest: `sha256:${'cd'.repeat(32)}` } })
    expect(b!.sources[1]).toMatchObject({ ok: false, error: expect.stringMatching(/ftp:/) })
    expect(await operator.getBlueprint(10_000n)).toBeUndefined()

    const { serviceId } = await c.requestService({ blueprintId: bp, tier: 2, deposit: 14_400_000n, ttlSeconds: 600n })
    expect(await operator.getService(serviceId)).toMatchObject({
      id: serviceId,
      customer: c.customerAddress,
      operator: c.operatorAddress,
      blueprintId: bp,
      tier: 2,
      ratePerHour: 14_400_000n,
      balance: 14_400_000n,
      earned: 0n,
      ttl: 600n,
      state: 'requested',
    })
    expect(await operator.getService(10_000n)).toBeUndefined()
    expect(await operator.paidUntil(serviceId)).toBe(0n)
  })

  test('default: getServices reads many services in one call, in order, unknown ids as undefined, at a chosen block', async () => {
    const bp = await c.registerBlueprint()
    const a = await c.requestService({ blueprintId: bp, deposit: 1_000n })
    const at = await c.publicClient.getBlockNumber({ cacheTime: 0 })
    const b = await c.requestService({ blueprintId: bp, tier: 1, deposit: 2_000n })
    const got = await operator.getServices([b.serviceId, 10_000n, a.serviceId, 2n ** 64n])
    expect(got.map((s) => s && [s.id, s.balance, s.tier, s.state])).toEqual([[b.serviceId, 2_000n, 1, 'requested'], undefined, [a.serviceId, 1_000n, 0, 'requested'], undefined])
    expect(got[0]).toEqual(await operator.getService(b.serviceId))
    // as of the block before b was requested, b did not exist yet
    expect((await operator.getServices([a.serviceId, b.serviceId], undefined, at)).map((s) => s?.id)).toEqual([a.serviceId, undefined])
    expect(await operator.getServices([])).toEqual([])
  })

  test('behavior: activate, withdraw and refund are idempotent', async () => {
    const bp = await c.registerBlueprint()
    const { serviceId } = await c.requestService({ blueprintId: bp, deposit: 3_600_000n })
    const hash = await operator.activate(serviceId)
    expect(hash).toMatch(/^0x[0-9a-f]{64}$/)
    expect(await operator.activate(serviceId)).toBe('already')
    const s = await operator.getService(serviceId)
    expect(await operator.paidUntil(serviceId)).toBe(s!.settledAt + 3600n)

    await c.mineAt(s!.settledAt + 100n)
    await c.testClient.setNextBlockTimestamp({ timestamp: s!.settledAt + 120n })
    const w = await operator.withdraw(serviceId)
    expect(w).toMatchObject({ amount: 120_000n })
    // the same second again: nothing earned since
    await c.testClient.setNextBlockTimestamp({ timestamp: s!.settledAt + 120n })
    await c.testClient.mine({ blocks: 1 })
    expect(await operator.withdraw(serviceId)).toBe('nothing')

    const before = await c.customer.balanceOf()
    await c.testClient.setNextBlockTimestamp({ timestamp: s!.settledAt + 240n })
    const r = await operator.refund(serviceId, 'TTL_REACHED')
    expect(r).not.toBe('already')
    expect(await c.customer.balanceOf()).toBe(before + 3_600_000n - 240_000n)
    expect(await operator.refund(serviceId, 'TTL_REACHED')).toBe('already')
    expect((await operator.getService(serviceId))!.state).toBe('closed')
    expect(await operator.withdraw(serviceId)).toBe('nothing')
  })

  test('behavior: refund of a terminated service is already done; activate of it is an error', async () => {
    const bp = await c.registerBlueprint()
    const { serviceId } = await c.requestService({ blueprintId: bp, deposit: 1_000_000n })
    await c.customer.terminate(serviceId)
    expect(await operator.refund(serviceId, 'PROVISION_FAILED')).toBe('already')
    await expect(operator.activate(serviceId)).rejects.toMatchObject({ code: 'SERVICE_ENDED', retryable: false })
    await expect(operator.refund(10_000n, 'PROVISION_FAILED')).rejects.toMatchObject({ code: 'SERVICE_UNKNOWN' })
  })

  test('behavior: concurrent sends are serialized (one nonce at a time)', async () => {
    const bp = await c.registerBlueprint()
    const ids = []
    for (let i = 0; i < 4; i++) ids.push((await c.requestService({ blueprintId: bp, deposit: 1_000n })).serviceId)
    const results = await Promise.all(ids.map((id) => operator.activate(id)))
    expect(results.every((r) => r !== 'already')).toBe(true)
    for (const id of ids) expect((await operator.getService(id))!.state).toBe('active')
  })

  test('args: batchSize — concurrent reads go to the node as JSON-RPC batches', async () => {
    const bp = await c.registerBlueprint()
    const ids: bigint[] = []
    for (let i = 0; i < 3; i++) ids.push((await c.requestService({ blueprintId: bp, deposit: 1_000n })).serviceId)
    // a counting relay in front of anvil: how many HTTP requests, and how many calls in each
    const calls: number[] = []
    const relay = createServer((req, res) => {
      const chunks: Buffer[] = []
      req.on('data', (b: Buffer) => chunks.push(b))
      req.on('end', async () => {
        const body = Buffer.concat(chunks).toString()
        const parsed = JSON.parse(body) as unknown
        calls.push(Array.isArray(parsed) ? parsed.length : 1)
        const r = await fetch(c.rpcUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
        res.writeHead(r.status, { 'content-type': 'application/json' }).end(await r.text())
      })
    })
    await new Promise<void>((ok) => relay.listen(0, '127.0.0.1', ok))
    const rpcUrl = `http://127.0.0.1:${(relay.address() as AddressInfo).port}`
    try {
      const read = async (batchSize: number) => {
        calls.length = 0
        const client = createEscrowClient(c.common, {
          publicClient: createEvmPublicClient({ rpcUrl, chainId: c.chainId, batchSize }),
          walletClient: c.wallets.operator,
          escrow: c.addresses.escrow,
          registry: c.addresses.registry,
        })
        const got = await Promise.all([...ids, ...ids, ...ids].map((id) => client.getService(id)))
        expect(got.map((s) => s?.id)).toEqual([...ids, ...ids, ...ids])
        return [...calls]
      }
      expect(await read(0)).toEqual(Array(9).fill(1))
      expect(await read(50)).toEqual([9])
      expect(await read(4)).toEqual([4, 4, 1])
    } finally {
      await new Promise((ok) => relay.close(ok))
    }
  })

  test('error: not the operator — the revert is decoded and not retryable', async () => {
    const bp = await c.registerBlueprint()
    const { serviceId } = await c.requestService({ blueprintId: bp, deposit: 1_000n })
    const stranger = createEscrowClient(c.common, { publicClient: c.publicClient, walletClient: c.wallets.developer, escrow: c.addresses.escrow, registry: c.addresses.registry })
    await expect(stranger.activate(serviceId)).rejects.toMatchObject({ code: 'TX_REVERTED', errorName: 'NotOperator', retryable: false })
  })

  test('error: RPC unreachable — a retryable error, within the timeout', async () => {
    const rpcUrl = 'http://127.0.0.1:9' // discard port: nothing listens
    const down = createEscrowClient(c.common, {
      publicClient: createEvmPublicClient({ rpcUrl, chainId: c.chainId, pollingIntervalMs: 50, requestTimeoutMs: 1_000 }),
      walletClient: createEvmWalletClient({ rpcUrl, chainId: c.chainId, privateKey: c.anvil.accounts[1]!.privateKey }),
      escrow: c.addresses.escrow,
      registry: c.addresses.registry,
      readTimeoutMs: 2_000,
    })
    await expect(down.refund(1n, 'UNHEALTHY')).rejects.toMatchObject({ code: 'RPC_UNAVAILABLE', retryable: true })
  })
})
