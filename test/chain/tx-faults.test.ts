/**
 * The chain side's failure codes, provoked on the wire against a real anvil (through a relay that rewrites answers)
 * or a real process: TX_FAILED (simulation and estimate pass, the mined transaction reverts), EVENT_MISSING (a
 * receipt without the event the call must emit), RPC_REJECTED (the node refuses a call for good),
 * ANVIL_START_FAILED (the node binary exits during start-up).
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { serviceEscrowAbi } from '../../chain/contracts/abi.js'
import { startAnvil } from '../../chain/evm/anvil.js'
import { createEvmPublicClient, createEvmWalletClient } from '../../chain/evm/clients.js'
import { createCustomerClient } from '../../chain/evm/customer.js'
import { createEscrowClient } from '../../chain/evm/escrow.js'
import { createTxSender } from '../../chain/evm/tx.js'
import { createTestChain, defaultBlueprint, type TestChain } from '../helpers/anvil.js'
import { startRewritingRelay, type RpcAnswer } from './proxy.js'

let c: TestChain
beforeAll(async () => {
  c = await createTestChain()
})
afterAll(async () => {
  await c?.stop()
})

async function through(rewrite: (method: string, answer: RpcAnswer, params: unknown[]) => RpcAnswer, account: 1 | 2) {
  const relay = await startRewritingRelay(c.rpcUrl, rewrite)
  const base = { rpcUrl: relay.url, chainId: c.chainId, pollingIntervalMs: 50 }
  return { relay, publicClient: createEvmPublicClient(base), walletClient: createEvmWalletClient({ ...base, privateKey: c.anvil.accounts[account]!.privateKey }) }
}

describe('chain failure codes on the wire', () => {
  test('error: TX_FAILED — the simulation and the estimate pass, the mined transaction reverts', async () => {
    // a node (or a race) that lets the simulation through: the transaction is sent and reverts when mined
    const { relay, publicClient, walletClient } = await through(
      (method, a) =>
        method === 'eth_fillTransaction'
          ? { error: { code: -32601, message: 'the method eth_fillTransaction does not exist/is not available' } }
          : method === 'eth_call' && a.error
            ? { result: '0x' }
            : method === 'eth_estimateGas' && a.error
              ? { result: '0x30d40' }
              : a,
      1,
    )
    try {
      const tx = createTxSender(c.common, { publicClient, walletClient, timeoutMs: 20_000 })
      await expect(tx.send({ address: c.addresses.escrow, abi: serviceEscrowAbi, functionName: 'activate', args: [999_999n] })).rejects.toMatchObject({
        code: 'TX_FAILED',
        retryable: false,
        details: [expect.stringMatching(/^transaction: 0x[0-9a-f]{64}$/)],
      })
    } finally {
      await relay.close()
    }
  })

  test('error: CHAIN_ID_MISMATCH — a node answering for another chain gets nothing signed for it (retryable)', async () => {
    const { relay, publicClient, walletClient } = await through((method, a) => (method === 'eth_chainId' ? { result: '0x1' } : a), 1)
    try {
      const sent = await c.publicClient.getTransactionCount({ address: c.anvil.accounts[1]!.address })
      const tx = createTxSender(c.common, { publicClient, walletClient, timeoutMs: 20_000 })
      const bp = await c.registerBlueprint({ name: 'mismatch' })
      const { serviceId } = await c.requestService({ blueprintId: bp, deposit: 1_000n })
      await expect(tx.send({ address: c.addresses.escrow, abi: serviceEscrowAbi, functionName: 'activate', args: [serviceId] })).rejects.toMatchObject({ code: 'CHAIN_ID_MISMATCH', retryable: true })
      expect(await c.publicClient.getTransactionCount({ address: c.anvil.accounts[1]!.address })).toBe(sent)
    } finally {
      await relay.close()
    }
  })

  test('error: EVENT_MISSING — a receipt without the event the call must emit', async () => {
    const { relay, publicClient, walletClient } = await through((method, a) => (method === 'eth_getTransactionReceipt' && a.result ? { result: { ...(a.result as object), logs: [] } } : a), 2)
    try {
      const developer = createCustomerClient(c.common, { publicClient, walletClient, ...c.addresses })
      await expect(developer.registerBlueprint(defaultBlueprint)).rejects.toMatchObject({ code: 'EVENT_MISSING', retryable: false })
    } finally {
      await relay.close()
    }
  })

  test('error: RPC_REJECTED — a node that refuses eth_call for good is not retried', async () => {
    let calls = 0
    const { relay, publicClient, walletClient } = await through((method, a) => {
      if (method !== 'eth_call') return a
      calls++
      return { error: { code: -32601, message: 'the method eth_call does not exist/is not available' } }
    }, 1)
    try {
      const escrow = createEscrowClient(c.common, { publicClient, walletClient, escrow: c.addresses.escrow, registry: c.addresses.registry })
      await expect(escrow.getServices([1n])).rejects.toMatchObject({ code: 'RPC_REJECTED', retryable: false })
      expect(calls).toBe(1)
    } finally {
      await relay.close()
    }
  })

  test('error: ANVIL_START_FAILED — the node exits during start-up', async () => {
    await expect(startAnvil({ binary: '/bin/false', timeoutMs: 5_000 })).rejects.toMatchObject({ code: 'ANVIL_START_FAILED', retryable: false, message: expect.stringMatching(/exited during start-up/) })
  })
})
