/**
 * What developers and customers do on chain, for `npm run dev`, demos and tests: mint test tokens, register a
 * blueprint, request a service (approve + requestService), top up, change tier, terminate.
 */
import { decodeEventLog, type Account, type Address, type Chain, type Hex, type PublicClient, type TransactionReceipt, type Transport, type WalletClient } from 'viem'
import type { Common } from '../../core/common.js'
import type { Preferences } from '../../core/spec.js'
import { blueprintRegistryAbi, serviceEscrowAbi, testStablecoinAbi } from '../contracts/abi.js'
import type { BlueprintSource } from './blueprint.js'
import { BaseError } from '../../core/errors.js'
import { encodePreferences } from './preferences.js'
import { createTxSender } from './tx.js'

/** A source as the registry stores it; use it to publish sources the daemon must refuse. */
export type RawSource = { kind: number; uri: string; digest: Hex }

export type RegisterBlueprintParameters = {
  name: string
  sources: (BlueprintSource | RawSource)[]
  requirements: { vcpuMilli: number; memoryMiB: number; storageGiB: number; gpuCount?: number; gpuModel?: string; ports?: number[] }
  /** Token base units per hour, per tier index. */
  pricePerHour: bigint[]
}

export type RequestServiceParameters = {
  blueprintId: bigint
  operator: Address
  /** 0 basic, 1 standard, 2 premium. */
  tier: number
  /** Preferences object (encoded as JSON) or raw bytes. Default none. */
  preferences?: Preferences | Hex
  ttlSeconds: bigint
  /** Token base units pulled into escrow. */
  deposit: bigint
}

export type CustomerClient = {
  address: Address
  balanceOf(who?: Address): Promise<bigint>
  /** Mint test tokens (TestStablecoin only). */
  mint(amount: bigint, to?: Address): Promise<Hex>
  registerBlueprint(p: RegisterBlueprintParameters): Promise<{ blueprintId: bigint; hash: Hex }>
  /** Approve the deposit and request the service. */
  requestService(p: RequestServiceParameters): Promise<{ serviceId: bigint; hash: Hex }>
  /** Approve and pay `amount` into the service. */
  topUp(serviceId: bigint, amount: bigint): Promise<Hex>
  changeTier(serviceId: bigint, tier: number): Promise<Hex>
  terminate(serviceId: bigint): Promise<Hex>
}

export type CustomerClientParameters = {
  publicClient: PublicClient
  walletClient: WalletClient<Transport, Chain | undefined, Account>
  token: Address
  registry: Address
  escrow: Address
}

/** Encode a source for the registry (native 0, container 1, testing 2). */
export function encodeSource(s: BlueprintSource | RawSource): RawSource {
  if (typeof s.kind === 'number') return s as RawSource
  const src = s as BlueprintSource
  if (src.kind === 'container') return { kind: 1, uri: src.image, digest: `0x${src.digest.replace(/^sha256:/, '')}` }
  return { kind: src.kind === 'native' ? 0 : 2, uri: src.url, digest: `0x${src.sha256}` }
}

/** Create a client acting as the wallet's account. */
export function createCustomerClient(common: Common, p: CustomerClientParameters): CustomerClient {
  const tx = createTxSender(common, { publicClient: p.publicClient, walletClient: p.walletClient })
  const address = p.walletClient.account.address
  const approve = (amount: bigint) => tx.send({ address: p.token, abi: testStablecoinAbi, functionName: 'approve', args: [p.escrow, amount] })
  const escrow = (functionName: string, args: readonly unknown[]) => tx.send({ address: p.escrow, abi: serviceEscrowAbi, functionName, args })
  return {
    address,
    balanceOf: (who = address) => p.publicClient.readContract({ address: p.token, abi: testStablecoinAbi, functionName: 'balanceOf', args: [who] }),
    async mint(amount, to = address) {
      return (await tx.send({ address: p.token, abi: testStablecoinAbi, functionName: 'mint', args: [to, amount] })).transactionHash
    },
    async registerBlueprint(b) {
      const r = b.requirements
      const receipt = await tx.send({
        address: p.registry,
        abi: blueprintRegistryAbi,
        functionName: 'registerBlueprint',
        args: [
          b.name,
          b.sources.map(encodeSource),
          { vcpuMilli: r.vcpuMilli, memoryMiB: r.memoryMiB, storageGiB: r.storageGiB, gpuCount: r.gpuCount ?? 0, gpuModel: r.gpuModel ?? '', ports: r.ports ?? [] },
          b.pricePerHour,
        ],
      })
      return { blueprintId: idFrom(receipt, p.registry, 'BlueprintRegistered'), hash: receipt.transactionHash }
    },
    async requestService(s) {
      await approve(s.deposit)
      const prefs = typeof s.preferences === 'string' ? s.preferences : encodePreferences(s.preferences ?? {})
      const receipt = await escrow('requestService', [s.blueprintId, s.operator, s.tier, prefs, s.ttlSeconds, s.deposit])
      return { serviceId: idFrom(receipt, p.escrow, 'ServiceInitiated'), hash: receipt.transactionHash }
    },
    async topUp(serviceId, amount) {
      await approve(amount)
      return (await escrow('topUp', [serviceId, amount])).transactionHash
    },
    async changeTier(serviceId, tier) {
      return (await escrow('changeTier', [serviceId, tier])).transactionHash
    },
    async terminate(serviceId) {
      return (await escrow('terminate', [serviceId])).transactionHash
    },
  }
}

/** The id in the first `eventName` log of `contract` in a receipt. */
function idFrom(receipt: TransactionReceipt, contract: Address, eventName: 'BlueprintRegistered' | 'ServiceInitiated'): bigint {
  for (const l of receipt.logs) {
    if (l.address.toLowerCase() !== contract.toLowerCase()) continue
    try {
      const e = decodeEventLog({ abi: [...blueprintRegistryAbi, ...serviceEscrowAbi], data: l.data, topics: l.topics })
      if (e.eventName === 'BlueprintRegistered' && eventName === e.eventName) return e.args.blueprintId
      if (e.eventName === 'ServiceInitiated' && eventName === e.eventName) return e.args.serviceId
    } catch {
      // not one of ours
    }
  }
  throw new BaseError(`transaction ${receipt.transactionHash} has no ${eventName} event`, { code: 'EVENT_MISSING', retryable: false })
}
