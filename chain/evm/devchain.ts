/**
 * A local development chain: anvil from npm, the contracts deployed, and clients for each role (deployer, operator,
 * developer, customer) on anvil's well-known accounts. Used by `npm run dev` and the end-to-end tests.
 */
import type { Account, Chain, PublicClient, Transport, WalletClient } from 'viem'
import type { Common } from '../../core/common.js'
import type { Artifacts } from '../contracts/compile.js'
import { startAnvil, type Anvil } from './anvil.js'
import { createEvmPublicClient, createEvmWalletClient } from './clients.js'
import { createCustomerClient, type CustomerClient } from './customer.js'
import { deployContracts, type DeployContractsReturnType } from './deploy.js'

export type DevChainParameters = {
  /** Seconds between blocks; default one block per transaction. */
  blockTime?: number
  /** Receipt and filter polling, ms. Default 50. */
  pollingIntervalMs?: number
  artifacts?: Artifacts
}

type Wallet = WalletClient<Transport, Chain, Account>

export type DevChain = {
  anvil: Anvil
  rpcUrl: string
  chainId: number
  publicClient: PublicClient
  addresses: DeployContractsReturnType
  /** Account 0 deployed the contracts; 1 is the operator, 2 the blueprint developer, 3 the customer. */
  wallets: { deployer: Wallet; operator: Wallet; developer: Wallet; customer: Wallet }
  developer: CustomerClient
  customer: CustomerClient
  /** Stop anvil. */
  stop(): Promise<void>
}

/** Start anvil, deploy the contracts and build the role clients. */
export async function startDevChain(common: Common, o: DevChainParameters = {}): Promise<DevChain> {
  const anvil = await startAnvil(o.blockTime === undefined ? {} : { blockTime: o.blockTime })
  try {
    const base = { rpcUrl: anvil.rpcUrl, chainId: anvil.chainId, pollingIntervalMs: o.pollingIntervalMs ?? 50 }
    const publicClient = createEvmPublicClient(base)
    const wallet = (i: number) => createEvmWalletClient({ ...base, privateKey: anvil.accounts[i]!.privateKey })
    const wallets = { deployer: wallet(0), operator: wallet(1), developer: wallet(2), customer: wallet(3) }
    const addresses = await deployContracts({ publicClient, walletClient: wallets.deployer, ...(o.artifacts ? { artifacts: o.artifacts } : {}) })
    const client = (w: Wallet) => createCustomerClient(common, { publicClient, walletClient: w, ...addresses })
    common.logger.info({ rpcUrl: anvil.rpcUrl, chainId: anvil.chainId, ...addresses, deployBlock: addresses.deployBlock.toString() }, 'local chain ready')
    return {
      anvil,
      rpcUrl: anvil.rpcUrl,
      chainId: anvil.chainId,
      publicClient,
      addresses,
      wallets,
      developer: client(wallets.developer),
      customer: client(wallets.customer),
      stop: () => anvil.stop(),
    }
  } catch (err) {
    await anvil.stop()
    throw err
  }
}
