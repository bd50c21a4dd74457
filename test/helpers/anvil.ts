/**
 * Test chain helpers: a real anvil from npm with the contracts deployed, plus shortcuts to register a blueprint and
 * request a service as the customer (mint, approve, requestService) and to move time.
 */
import { createTestClient, http, type Address, type Hex, type TestClient } from 'viem'
import { createTestCommon, type Common } from '../../core/common.js'
import { compileContracts } from '../../chain/contracts/compile.js'
import type { RegisterBlueprintParameters, RequestServiceParameters } from '../../chain/evm/customer.js'
import { startDevChain, type DevChain } from '../../chain/evm/devchain.js'

export { startAnvil } from '../../chain/evm/anvil.js'
export type { Anvil } from '../../chain/evm/anvil.js'

/** sha256 of the bytes "demo" — any pinned digest will do where nothing is downloaded. */
export const demoSha256 = '2a97516c354b68848cdbd8f54a226a0a55b21ed138e207ad6c5cbb9c00aa5aea'

/** Basic, standard, premium: 1000, 2000 and 4000 base units per second. */
export const defaultPrices = [3_600_000n, 7_200_000n, 14_400_000n]

export const defaultBlueprint: RegisterBlueprintParameters = {
  name: 'demo-http',
  sources: [{ kind: 'native', url: 'http://127.0.0.1:9/demo', sha256: demoSha256 }],
  requirements: { vcpuMilli: 500, memoryMiB: 256, storageGiB: 1, ports: [8080] },
  pricePerHour: defaultPrices,
}

export type TestChain = DevChain & {
  common: Common
  testClient: TestClient
  operatorAddress: Address
  customerAddress: Address
  /** Register a blueprint as the developer (defaults: `defaultBlueprint`). */
  registerBlueprint(p?: Partial<RegisterBlueprintParameters>): Promise<bigint>
  /** Mint the deposit to the customer, approve it and request the service from the operator. */
  requestService(p: Partial<RequestServiceParameters> & { blueprintId: bigint }): Promise<{ serviceId: bigint; hash: Hex }>
  /** Mine one block at exactly `timestamp` (unix seconds). */
  mineAt(timestamp: bigint): Promise<void>
  /** The latest block's timestamp. */
  now(): Promise<bigint>
}

/** Start anvil and deploy the contracts. Call `stop()` in afterAll. */
export async function createTestChain(o: { blockTime?: number } = {}): Promise<TestChain> {
  const { common } = createTestCommon()
  const artifacts = await compileContracts()
  const chain = await startDevChain(common, { artifacts, ...(o.blockTime === undefined ? {} : { blockTime: o.blockTime }) })
  const testClient = createTestClient({ mode: 'anvil', transport: http(chain.rpcUrl, { retryCount: 0 }), pollingInterval: 50 })
  const now = async () => (await chain.publicClient.getBlock({ blockTag: 'latest' })).timestamp
  return {
    ...chain,
    common,
    testClient,
    operatorAddress: chain.wallets.operator.account.address,
    customerAddress: chain.wallets.customer.account.address,
    async registerBlueprint(p = {}) {
      return (await chain.developer.registerBlueprint({ ...defaultBlueprint, ...p })).blueprintId
    },
    async requestService(p) {
      const deposit = p.deposit ?? 3_600_000n
      await chain.customer.mint(deposit)
      return chain.customer.requestService({
        operator: chain.wallets.operator.account.address,
        tier: 0,
        ttlSeconds: 86_400n,
        deposit,
        ...p,
      })
    },
    async mineAt(timestamp) {
      await testClient.setNextBlockTimestamp({ timestamp })
      await testClient.mine({ blocks: 1 })
    },
    now,
  }
}
