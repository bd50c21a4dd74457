/**
 * A counting fake of an EVM node serving one ServiceEscrow, for scale benchmarks where populating anvil with
 * 10,000 services would take longer than the measurement: JSON-RPC over HTTP (single calls and batches) on
 * 127.0.0.1 with the real wire format — `eth_chainId`, `eth_blockNumber`, `eth_getBlockByNumber`, and `eth_call` of
 * `getService` / `getServices` encoded from the contract's ABI — so viem and the escrow client run unmodified. It
 * counts HTTP requests and JSON-RPC calls. Run as a child process (`node bin/run-ts.mjs test/fakes/escrow-rpc.ts N`)
 * so that its CPU time is not the measured process's; it then prints `{"url": ...}` on one line.
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { decodeFunctionData, encodeFunctionResult, zeroAddress, type Address, type Hex } from 'viem'
import { serviceEscrowAbi } from '../../chain/contracts/abi.js'

export type FakeEscrowService = {
  customer: Address
  operator: Address
  blueprintId: bigint
  tier: number
  ratePerHour: bigint
  balance: bigint
  earned: bigint
  settledAt: bigint
  endsAt: bigint
  ttl: bigint
  /** 0 none, 1 requested, 2 active, 3 terminated, 4 closed */
  state: number
}

export type FakeEscrowRpc = {
  url: string
  stats(): { httpRequests: number; calls: number; ethCalls: number }
  close(): Promise<void>
}

export const fakeEscrowAddress: Address = '0x00000000000000000000000000000000000e5c00'
export const fakeChainId = 31337
/** Block timestamp of the fake's head. */
export const fakeNow = 1_800_000_000n
export const fakeHead = 1_000_000n

const none: FakeEscrowService = { customer: zeroAddress, operator: zeroAddress, blueprintId: 0n, tier: 0, ratePerHour: 0n, balance: 0n, earned: 0n, settledAt: 0n, endsAt: 0n, ttl: 0n, state: 0 }

/**
 * The escrow record of service `id` in a fleet of `n` (ids 1..n): all active on the basic tier (one replica),
 * balances paying for hours to days (every 5000th has run out). Every 1000th service drifted on chain (its balance is one base unit lower than its events
 * said), so that a verification sweep has something to find.
 */
export function fleetService(id: bigint, n: number): { chain: FakeEscrowService; recorded: FakeEscrowService } | undefined {
  if (id < 1n || id > BigInt(n)) return undefined
  const i = Number(id)
  const tier = 0
  const recorded: FakeEscrowService = {
    customer: `0x${'22'.repeat(20)}`,
    operator: `0x${'11'.repeat(20)}`,
    blueprintId: 1n,
    tier,
    ratePerHour: 3_600_000n << BigInt(tier),
    balance: BigInt(1_000 * (i % 5000)) * 3_600n,
    earned: 0n,
    settledAt: fakeNow - BigInt(i % 3600),
    endsAt: fakeNow + 30n * 86_400n,
    ttl: 31n * 86_400n,
    state: 2,
  }
  const chain = i % 1000 === 0 ? { ...recorded, balance: recorded.balance - 1n } : recorded
  return { chain, recorded }
}

type Req = { jsonrpc: '2.0'; id: number | string; method: string; params?: unknown[] }

export async function startFakeEscrowRpc(n: number): Promise<FakeEscrowRpc> {
  let httpRequests = 0
  let calls = 0
  let ethCalls = 0
  const block = (num: bigint) => ({
    number: `0x${num.toString(16)}`,
    hash: `0x${num.toString(16).padStart(64, '0')}`,
    parentHash: `0x${(num - 1n).toString(16).padStart(64, '0')}`,
    timestamp: `0x${fakeNow.toString(16)}`,
    nonce: '0x0000000000000000',
    difficulty: '0x0',
    gasLimit: '0x1c9c380',
    gasUsed: '0x0',
    miner: zeroAddress,
    extraData: '0x',
    logsBloom: `0x${'00'.repeat(256)}`,
    transactionsRoot: `0x${'00'.repeat(32)}`,
    stateRoot: `0x${'00'.repeat(32)}`,
    receiptsRoot: `0x${'00'.repeat(32)}`,
    sha3Uncles: `0x${'00'.repeat(32)}`,
    size: '0x0',
    totalDifficulty: '0x0',
    baseFeePerGas: '0x1',
    transactions: [],
    uncles: [],
  })
  const record = (id: bigint) => fleetService(id, n)?.chain ?? none
  function answer(r: Req): unknown {
    calls++
    switch (r.method) {
      case 'eth_chainId':
        return `0x${fakeChainId.toString(16)}`
      case 'eth_blockNumber':
        return `0x${fakeHead.toString(16)}`
      case 'eth_getBlockByNumber': {
        const tag = r.params?.[0]
        return block(typeof tag === 'string' && tag.startsWith('0x') ? BigInt(tag) : fakeHead)
      }
      case 'eth_call': {
        ethCalls++
        const tx = r.params?.[0] as { to?: string; data?: Hex; input?: Hex }
        if (tx.to?.toLowerCase() !== fakeEscrowAddress) return '0x'
        const { functionName, args } = decodeFunctionData({ abi: serviceEscrowAbi, data: (tx.data ?? tx.input)! })
        if (functionName === 'getService') return encodeFunctionResult({ abi: serviceEscrowAbi, functionName, result: record(args[0]) })
        if (functionName === 'getServices') return encodeFunctionResult({ abi: serviceEscrowAbi, functionName, result: args[0].map(record) })
        throw new Error(`the fake does not serve ${functionName}`)
      }
      default:
        throw new Error(`method ${r.method} not served`)
    }
  }
  const one = (r: Req) => {
    try {
      return { jsonrpc: '2.0', id: r.id, result: answer(r) }
    } catch (err) {
      return { jsonrpc: '2.0', id: r.id, error: { code: -32601, message: (err as Error).message } }
    }
  }
  const server = createServer((req, res) => {
    httpRequests++
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString()) as Req | Req[]
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify(Array.isArray(body) ? body.map(one) : one(body)))
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return {
    url,
    stats: () => ({ httpRequests, calls, ethCalls }),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}

// as a child process: serve N services; GET /stats answers the counters
if (process.argv[1] && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  const fake = await startFakeEscrowRpc(Number(process.argv[2] ?? 100))
  const { createServer: create } = await import('node:http')
  const stats = create((_, res) => res.end(JSON.stringify(fake.stats())))
  await new Promise<void>((resolve) => stats.listen(0, '127.0.0.1', resolve))
  process.stdout.write(`${JSON.stringify({ url: fake.url, stats: `http://127.0.0.1:${(stats.address() as AddressInfo).port}` })}\n`)
  process.on('SIGTERM', () => process.exit(0))
}
