/**
 * The verification sweep (daemon/service/verify.ts) against a real anvil: payment facts applied by intake from the
 * contract's own events agree with `getServices` at the cursor block; a drifted fact is logged, counted and healed;
 * a service the chain does not know counts a missing read; facts applied after the read block are not compared.
 */
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { createEscrowClient } from '../../chain/evm/escrow.js'
import { decodeLog } from '../../chain/evm/decode.js'
import { applyEvents } from '../../daemon/intake.js'
import type { ServiceContext } from '../../daemon/service/context.js'
import { createPaymentVerifier } from '../../daemon/service/verify.js'
import { createStore, type Store } from '../../daemon/store.js'
import { createTestChain, type TestChain } from '../helpers/anvil.js'

let c: TestChain
let store: Store
const kicked: string[] = []
let ctx: ServiceContext

beforeAll(async () => {
  c = await createTestChain()
  store = await createStore(c.common, { file: join(mkdtempSync(join(tmpdir(), 'bpo-verify-')), 'state.json'), operatorId: 'op', chainId: c.chainId })
  const escrow = createEscrowClient(c.common, { publicClient: c.publicClient, walletClient: c.wallets.operator, escrow: c.addresses.escrow, registry: c.addresses.registry })
  ctx = {
    common: c.common,
    log: c.common.logger,
    config: { loop: { verifyPerTick: 2, vanishedAfterMs: 600_000 } },
    store,
    escrow,
    book: { set: () => undefined },
    kick: (id: string) => kicked.push(id),
  } as unknown as ServiceContext
})
afterAll(async () => {
  await store?.close()
  await c?.stop()
})

/** Intake of every escrow log of these transactions, then the cursor at the latest block. */
async function intake(hashes: `0x${string}`[]) {
  for (const hash of hashes) {
    const receipt = await c.publicClient.getTransactionReceipt({ hash })
    const events = receipt.logs.filter((l) => l.address.toLowerCase() === c.addresses.escrow.toLowerCase()).map((l) => decodeLog(l, c.chainId))
    await store.update((st) => applyEvents(st, events, { operator: c.operatorAddress.toLowerCase(), chainId: c.chainId, logger: c.common.logger }))
  }
  const b = await c.publicClient.getBlock({ blockTag: 'latest' })
  await store.update((st) => void (st.cursor = { blockNumber: b.number.toString(), blockHash: b.hash }))
}

const count = async (field: string) => Number(/bpo_payment_fact_disagreements_total\{field="(\w+)"\} (\d+)/g.exec((await c.common.metrics.render()).split('\n').find((l) => l.includes(`field="${field}"`)) ?? '')?.[2] ?? 0)

describe('verification sweep', () => {
  test('default: facts from events agree with the escrow; drift is counted and healed; a rolling slice of verify_per_tick', async () => {
    const bp = await c.registerBlueprint()
    const a = await c.requestService({ blueprintId: bp, deposit: 3_600_000n })
    const b = await c.requestService({ blueprintId: bp, tier: 1, deposit: 7_200_000n })
    const operator = createEscrowClient(c.common, { publicClient: c.publicClient, walletClient: c.wallets.operator, escrow: c.addresses.escrow, registry: c.addresses.registry })
    const act = (await operator.activate(a.serviceId)) as `0x${string}`
    await c.customer.mint(1_000_000n)
    const top = await c.customer.topUp(a.serviceId, 1_000_000n)
    await intake([a.hash, b.hash, act, top])
    const verifier = createPaymentVerifier(ctx)
    await verifier.run()
    expect(await c.common.metrics.render()).not.toMatch(/bpo_payment_fact_disagreements_total\{/)
    expect(store.read().services[String(a.serviceId)]!.chain).toMatchObject({ onchainState: 'active', balance: expect.any(String) })

    // drift: the record says otherwise than the chain
    await store.update((st) => void (st.services[String(b.serviceId)]!.chain!.balance = '1'))
    await verifier.run() // slice of 2: both services again (only two live)
    expect(await count('balance')).toBe(1)
    expect(store.read().services[String(b.serviceId)]!.chain!.balance).toBe('7200000')
    expect(kicked).toContain(String(b.serviceId))
    await verifier.run()
    expect(await count('balance')).toBe(1) // healed: no second report
  })

  test('behavior: a service the chain does not know counts a missing read; facts newer than the read are skipped', async () => {
    const cursor = BigInt(store.read().cursor!.blockNumber)
    await store.update((st) => {
      const any = Object.values(st.services)[0]!
      st.services['9999'] = { ...structuredClone(any), serviceId: '9999', chain: { ...any.chain, asOfBlock: cursor.toString() } }
      st.services['9998'] = { ...structuredClone(any), serviceId: '9998', chain: { ...any.chain, balance: '5', asOfBlock: (cursor + 1n).toString() } }
    })
    const verifier = createPaymentVerifier({ ...ctx, config: { loop: { verifyPerTick: 10, vanishedAfterMs: 600_000 } } } as unknown as ServiceContext)
    await verifier.run()
    expect(store.read().services['9999']!.missing).toMatchObject({ checks: 1 })
    expect(await count('exists')).toBe(1)
    expect(store.read().services['9998']!.chain!.balance).toBe('5') // not compared: applied after the read block
    expect(store.read().services['9998']!.missing).toBeUndefined()
  })
})
