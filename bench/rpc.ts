/**
 * The chain reads of one reconcile pass: every live service's escrow record (`getService`), read concurrently as
 * the loop does, against a real anvil node — one HTTP request per call versus JSON-RPC batches
 * (`[chain] rpc_batch_size`). Services 1..N exist on chain (requested by the customer) so each read decodes a real
 * record. Run: `npm run bench -- rpc` or `node bin/run-ts.mjs bench/rpc.ts [services]`.
 */
import { createTestCommon } from '../core/common.js'
import { createEvmPublicClient } from '../chain/evm/clients.js'
import { startDevChain } from '../chain/evm/devchain.js'
import { createEscrowClient } from '../chain/evm/escrow.js'

const counts = process.argv[2] ? [Number(process.argv[2])] : [100, 1000]
const rounds = 7
const { common } = createTestCommon()
const chain = await startDevChain(common, { pollingIntervalMs: 20 })

try {
  const { blueprintId } = await chain.developer.registerBlueprint({
    name: 'bench',
    sources: [{ kind: 'native', url: 'http://127.0.0.1:9/bench', sha256: 'ab'.repeat(32) }],
    requirements: { vcpuMilli: 250, memoryMiB: 128, storageGiB: 0, ports: [8080] },
    pricePerHour: [3_600_000n, 7_200_000n, 14_400_000n],
  })
  const max = Math.max(...counts)
  await chain.customer.mint(BigInt(max) * 3_600_000n)
  const operator = chain.wallets.operator.account.address
  let made = 0
  const t0 = performance.now()
  for (; made < max; made++) {
    await chain.customer.requestService({ blueprintId, operator, tier: 0, ttlSeconds: 3600n, deposit: 3_600_000n })
    if ((made + 1) % 100 === 0) process.stderr.write(`${made + 1} requested, ${((performance.now() - t0) / 1000).toFixed(1)} s\n`)
  }
  console.log(`${made} services requested on anvil in ${((performance.now() - t0) / 1000).toFixed(1)} s`)

  for (const batchSize of [0, 50, 200]) {
    const publicClient = createEvmPublicClient({ rpcUrl: chain.rpcUrl, chainId: chain.chainId, batchSize })
    const escrow = createEscrowClient(common, { publicClient, walletClient: chain.wallets.operator, registry: chain.addresses.registry, escrow: chain.addresses.escrow })
    for (const n of counts) {
      const ids = Array.from({ length: n }, (_, i) => BigInt(i + 1))
      const times: number[] = []
      for (let r = 0; r < rounds; r++) {
        const t = performance.now()
        const got = await Promise.all(ids.map((id) => escrow.getService(id)))
        times.push(performance.now() - t)
        if (got.some((s) => s?.state !== 'requested')) throw new Error('a service read back wrong')
      }
      times.sort((a, b) => a - b)
      const p50 = times[Math.floor(rounds / 2)]!
      console.log(
        `${String(n).padStart(5)} services, ${batchSize ? `batches of ${String(batchSize).padEnd(3)}` : 'no batching   '}: p50 ${p50.toFixed(1)} ms per pass (min ${times[0]!.toFixed(1)}, max ${times[rounds - 1]!.toFixed(1)}; ${rounds} passes), ${batchSize ? Math.ceil(n / batchSize) : n} HTTP requests`,
      )
    }
  }
} finally {
  await chain.stop()
}
