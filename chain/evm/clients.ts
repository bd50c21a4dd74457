/**
 * viem clients for one chain: a public client for reads and logs, and a wallet client for a private key.
 */
import { createPublicClient, createWalletClient, defineChain, http, type Account, type Chain, type Hex, type PublicClient, type Transport, type WalletClient } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { redactUrl } from '../../core/errors.js'
import type { Metrics } from '../../core/metrics.js'

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
  /** Record every JSON-RPC call's latency (`chain_rpc_request_seconds`) and failures (`chain_rpc_request_errors_total`) by method. */
  metrics?: Metrics
}

/** The transport with each request timed and its failures counted by JSON-RPC method. */
function instrumented(transport: Transport, metrics: Metrics | undefined): Transport {
  if (!metrics) return transport
  const seconds = metrics.histogram('chain_rpc_request_seconds', 'JSON-RPC call latency by method, seconds', { labels: ['method'], buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15] })
  const errors = metrics.counter('chain_rpc_request_errors_total', 'Failed JSON-RPC calls by method and error name', { labels: ['method', 'error'] })
  return ((args: Parameters<Transport>[0]) => {
    const t = transport(args)
    const request = (async (a: { method: string; params?: unknown }, o?: unknown) => {
      const t0 = performance.now()
      try {
        return await (t.request as (a: unknown, o?: unknown) => Promise<unknown>)(a, o)
      } catch (err) {
        errors.inc({ method: a.method, error: (err as Error)?.name ?? 'Error' })
        throw err
      } finally {
        seconds.observe((performance.now() - t0) / 1000, { method: a.method })
      }
    }) as typeof t.request
    return { ...t, request }
  }) as Transport
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
    transport: instrumented(
      http(p.rpcUrl, {
        retryCount: 0,
        timeout: p.requestTimeoutMs ?? 15_000,
        name: redactUrl(p.rpcUrl),
        ...(p.batchSize && p.batchSize > 1 ? { batch: { batchSize: p.batchSize, wait: 0 } } : {}),
      }),
      p.metrics,
    ),
    pollingInterval: p.pollingIntervalMs ?? 1_000,
  }) as PublicClient
}

/** Create a wallet client signing locally with `privateKey`. */
export function createEvmWalletClient(p: EvmClientsParameters & { privateKey: Hex }): WalletClient<Transport, Chain, Account> {
  return createWalletClient({
    account: privateKeyToAccount(p.privateKey),
    chain: chainFor(p.rpcUrl, p.chainId),
    transport: instrumented(http(p.rpcUrl, { retryCount: 0, timeout: p.requestTimeoutMs ?? 15_000 }), p.metrics),
    pollingInterval: p.pollingIntervalMs ?? 1_000,
  })
}
