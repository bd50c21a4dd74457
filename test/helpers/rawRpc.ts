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
  /**
   * Mine one transaction at exactly `at` (unix seconds) and return its receipt. After `useTimestampInterval()`, a
   * transaction one second after the last one mined needs no evm_setNextBlockTimestamp.
   */
  send(from: Hex, to: Hex, data: Hex, at?: bigint): Promise<RawReceipt>
  ethCall(to: Hex, data: Hex, blockTag?: string): Promise<Hex>
  /** Several eth_calls at the latest block in one HTTP request (a JSON-RPC batch), results in order. */
  ethCalls(calls: ReadonlyArray<{ to: Hex; data: Hex }>): Promise<Hex[]>
  snapshot(): Promise<Hex>
  /** anvil_setBlockTimestampInterval(1): each block one second after the previous one unless set otherwise. */
  useTimestampInterval(): Promise<void>
  revert(id: Hex): Promise<void>
  /** JSON-RPC requests made so far. */
  readonly requests: number
}

export function createRawRpc(url: string): RawRpc {
  let id = 0
  let requests = 0
  let interval = false
  let lastMined: bigint | undefined
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
      if (at !== undefined && !(interval && lastMined !== undefined && at === lastMined + 1n)) await call('evm_setNextBlockTimestamp', [`0x${at.toString(16)}`])
      lastMined = at
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
    async ethCalls(calls) {
      requests++
      const first = id + 1
      const body = calls.map((x) => ({ jsonrpc: '2.0', id: ++id, method: 'eth_call', params: [{ to: x.to, data: x.data }, 'latest'] }))
      const res = (await (await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })).json()) as Array<{ id: number; result?: Hex; error?: { message: string } }>
      return calls.map((_, i) => {
        const r = res.find((x) => x.id === first + i)
        if (!r || r.error || r.result === undefined) throw new Error(`eth_call ${i}: ${r?.error?.message ?? 'no answer'}`)
        return r.result
      })
    },
    snapshot: () => call<Hex>('evm_snapshot'),
    async useTimestampInterval() {
      await call('anvil_setBlockTimestampInterval', [1])
      interval = true
      lastMined = undefined
    },
    async revert(snap) {
      lastMined = undefined
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
