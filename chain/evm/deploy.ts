/**
 * Deploy TestStablecoin, BlueprintRegistry and ServiceEscrow(token, registry) from freshly compiled artifacts.
 */
import type { Account, Address, Chain, Hex, PublicClient, Transport, WalletClient } from 'viem'
import { compileContracts, type Artifacts } from '../contracts/compile.js'
import { TxFailedError } from './errors.js'

export type DeployContractsParameters = {
  publicClient: PublicClient
  walletClient: WalletClient<Transport, Chain | undefined, Account>
  /** Compiled artifacts; default: `compileContracts()`. */
  artifacts?: Artifacts
  /** An existing ERC-20 to use instead of deploying TestStablecoin. */
  token?: Address
  /** Receipt timeout per deployment, ms. Default 60_000. */
  timeoutMs?: number
}

export type DeployContractsReturnType = { token: Address; registry: Address; escrow: Address; deployBlock: bigint }

/** Deploy the three contracts in order; `deployBlock` is the block of the first deployment (follow logs from it). */
export async function deployContracts(p: DeployContractsParameters): Promise<DeployContractsReturnType> {
  const artifacts = p.artifacts ?? (await compileContracts())
  const timeout = p.timeoutMs ?? 60_000
  const deploy = async (name: keyof Artifacts, args: readonly unknown[]) => {
    const hash: Hex = await p.walletClient.deployContract({
      abi: artifacts[name].abi,
      bytecode: artifacts[name].bytecode,
      args,
      account: p.walletClient.account,
      chain: p.walletClient.chain,
    } as Parameters<typeof p.walletClient.deployContract>[0])
    const receipt = await p.publicClient.waitForTransactionReceipt({ hash, timeout })
    if (receipt.status !== 'success' || !receipt.contractAddress) throw new TxFailedError(`deployment of ${name}`, hash)
    return { address: receipt.contractAddress, block: receipt.blockNumber }
  }
  const registry = await deploy('BlueprintRegistry', [])
  const token = p.token ? { address: p.token } : await deploy('TestStablecoin', [])
  const escrow = await deploy('ServiceEscrow', [token.address, registry.address])
  return { token: token.address, registry: registry.address, escrow: escrow.address, deployBlock: registry.block }
}
