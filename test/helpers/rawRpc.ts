/**
 * Raw JSON-RPC against anvil for tests that send thousands of transactions: unlocked dev accounts
 * (`eth_sendTransaction` with an explicit gas limit, so a reverting call is mined and reported by its receipt, not
 * refused by estimation), keep-alive HTTP, no polling. Calldata can be encoded with types wider than the ABI's
 * (`uint256` where the function takes `uint8`/`uint64`) to feed a contract values its ABI cannot express.
 */
import { encodeAbiParameters, toFunctionSelector, concatHex, type Hex, type Log } from 'viem'

export type RawReceipt = { status: 'success' | 'reverted'; logs: Log[]; blockNumber: bigint }

export type RawRpc = {
  call<T = unknown>(method: string, params?: unknown[]): Promise<T>
  /** Mine one transaction at exactly `at` (unix seconds) and return its receipt. */
  send(from: Hex, to: Hex, data: Hex, at?: bigint): Promise<RawReceipt>
  ethCall(to: Hex, data: Hex, blockTag?: string): Promise<Hex>
  snapshot(): Promise<Hex>
  revert(id: Hex): Promise<void>
  /** JSON-RPC requests made so far. */
  readonly requests: number
}

export function createRawRpc(url: string): RawRpc {
  let id = 0
  let requests = 0
  async function call<T>(method: string, params: unknown[] = []): Promise<T> {
    requests++
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: ++id, method, params }) })
    const body = (await res.json()) as { result?: T; error?: { message: string } }
    if (body.error) throw new Error(`${method}: ${body.error.message}`)
    return body.result as T
  }
  type RawLog = { address: Hex; topics: Hex[]; data: Hex; blockNumber: Hex; blockHash: Hex; transactionHash: Hex; transactionIndex: Hex; logIndex: Hex; removed: boolean }
  return {
    call,
    async send(from, to, data, at) {
      if (at !== undefined) await call('evm_setNextBlockTimestamp', [`0x${at.toString(16)}`])
      const hash = await call<Hex>('eth_sendTransaction', [{ from, to, data, gas: '0x4c4b40' }])
      let r = await call<{ status: Hex; logs: RawLog[]; blockNumber: Hex } | null>('eth_getTransactionReceipt', [hash])
      // automine mines right after the pool accepts the transaction: the receipt may lag the hash by a moment
      for (let i = 0; !r && i < 200; i++) {
        await new Promise((resolve) => setTimeout(resolve, i < 10 ? 1 : 20))
        r = await call('eth_getTransactionReceipt', [hash])
      }
      if (!r) throw new Error(`transaction ${hash} was not mined`)
      return {
        status: r.status === '0x1' ? 'success' : 'reverted',
        blockNumber: BigInt(r.blockNumber),
        logs: r.logs.map((l) => ({
          ...l,
          blockNumber: BigInt(l.blockNumber),
          logIndex: Number(l.logIndex),
          transactionIndex: Number(l.transactionIndex),
        })) as unknown as Log[],
      }
    },
    ethCall: (to, data, blockTag = 'latest') => call<Hex>('eth_call', [{ to, data }, blockTag]),
    snapshot: () => call<Hex>('evm_snapshot'),
    async revert(snap) {
      const ok = await call<boolean>('evm_revert', [snap])
      if (!ok) throw new Error(`evm_revert ${snap} failed`)
    },
    get requests() {
      return requests
    },
  }
}

/** Calldata for `signature` (e.g. "topUp(uint64,uint256)") with arguments encoded as `wideTypes`. */
export function wideCalldata(signature: string, wideTypes: string[], args: readonly unknown[]): Hex {
  return concatHex([toFunctionSelector(`function ${signature}`), encodeAbiParameters(wideTypes.map((type) => ({ type })), args)])
}
