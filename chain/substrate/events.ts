/**
 * TFChain events the watcher delivers, normalized from the smartContractModule / tfgridModule events of the
 * operator's twin. Amounts are in the chain's base unit (1 TFT = 10^7 units); chain times are unix milliseconds.
 */

/** Where an event happened: its identity is (blockNumber, eventIndex). */
export type TfchainEventPosition = {
  blockNumber: number
  blockHash: string
  /** Index of the event in the block's `system.events`. */
  eventIndex: number
  /** The block's `timestamp.now`, unix ms. */
  at: number
}

export type TfchainContractKind = 'node' | 'name' | 'rent'

/** What the watcher remembers of one of the twin's live contracts. */
export type TfchainContract = {
  contractId: string
  kind: TfchainContractKind
  /** Node contracts and rent contracts. */
  nodeId?: number
  /** Name contracts. */
  name?: string
  /** Node contracts: public IPv4 addresses reserved. */
  publicIps?: number
  /** Node contracts: the deployment hash (hex). */
  deploymentHash?: string
  /** Node contracts: the deployment's name from its deployment data (grid_client writes `{"type","name","projectName"}`). */
  deploymentName?: string
}

export type TfchainContractState = 'created' | 'grace-period' | 'deleted'

export type TfchainEvent = TfchainEventPosition &
  (
    | { type: 'contract-created'; contract: TfchainContract }
    | { type: 'contract-updated'; contract: TfchainContract; state: TfchainContractState }
    | { type: 'contract-cancelled'; contractId: string; kind: TfchainContractKind; nodeId?: number; name?: string; deploymentName?: string }
    /** `amountBilled` in units of 10^-7 TFT; `billedAt` the bill's own timestamp, unix ms. */
    | { type: 'contract-billed'; contractId: string; amountBilled: bigint; billedAt: number; discountLevel: string; deploymentName?: string }
    /** The twin's balance could not pay a bill: the contract keeps running for the grace period, then is cancelled. */
    | { type: 'grace-period-started'; contractId: string; nodeId: number; sinceBlock: number }
    /** Funds arrived: billing resumed. */
    | { type: 'grace-period-ended'; contractId: string; nodeId: number }
    /** A node hosting one of the twin's contracts was deleted, or has not reported uptime for `nodeDownAfterMs`. */
    | { type: 'node-down'; nodeId: number; reason: 'deleted' | 'uptime-stale'; lastUptimeAt?: number }
    | { type: 'node-up'; nodeId: number }
  )
