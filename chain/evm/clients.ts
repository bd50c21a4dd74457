/**
 * viem clients for one chain: a public client for reads and logs, and a wallet client for a private key.
 */
import { createPublicClient, createWalletClient, defineChain, http, type Account, type Chain, type Hex, type PublicClient, type Transport, type WalletClient } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { redactUrl } from '../../core/errors.js'

export type EvmClientsParameters = {
  rpcUrl: string
  chainId: number
  /** How often receipts and filters are polled, ms. Default 1_000 (use ~50 on a local chain). */
  pollingIntervalMs?: number
  /** Per-request timeout of the HTTP transport, ms. Default 15_000. */
  requestTimeoutMs?: number
  /**
   * JSON-RPC batching of the public client: calls made in the same event-loop turn (a reconcile pass reading every
   * service's escrow record) go out as one HTTP request of up to this many calls. 0 sends one request per call, for
   * endpoints that refuse batches. Default 0.
   */
  batchSize?: number
}

/** A minimal chain definition for `chainId` served at `rpcUrl`. */
export function chainFor(rpcUrl: string, chainId: number): Chain {
  return defineChain({
    id: chainId,
    name: `chain-${chainId}`,
    nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
    rpcUrls: { default: { http: [rpcUrl] } },
  })
}

/**
 * Create the public client. The transport does not retry by itself (retryCount 0): the callers retry by error
 * class with their own backoff, so one failing call is one logged failure.
 */
export function createEvmPublicClient(p: EvmClientsParameters): PublicClient {
  return createPublicClient({
    chain: chainFor(p.rpcUrl, p.chainId),
    transport: http(p.rpcUrl, {
      retryCount: 0,
      timeout: p.requestTimeoutMs ?? 15_000,
      name: redactUrl(p.rpcUrl),
      ...(p.batchSize && p.batchSize > 1 ? { batch: { batchSize: p.batchSize, wait: 0 } } : {}),
    }),
    pollingInterval: p.pollingIntervalMs ?? 1_000,
  }) as PublicClient
}

/** Create a wallet client signing locally with `privateKey`. */
export function createEvmWalletClient(p: EvmClientsParameters & { privateKey: Hex }): WalletClient<Transport, Chain, Account> {
  return createWalletClient({
    account: privateKeyToAccount(p.privateKey),
    chain: chainFor(p.rpcUrl, p.chainId),
    transport: http(p.rpcUrl, { retryCount: 0, timeout: p.requestTimeoutMs ?? 15_000 }),
    pollingInterval: p.pollingIntervalMs ?? 1_000,
  })
}
