/**
 * Drive the spec 61 TFChain runtime under chopsticks: sign extrinsics offline and put them in a block with
 * `dev_newBlock` (chopsticks' `author_submitExtrinsic` cannot validate against this runtime: see
 * ../shared/fixtures/substrate/README.md), fund accounts and set prices through `dev_setStorage`, move time with
 * `dev_timeTravel`. A failing extrinsic is dropped from the block rather than included (chopsticks cannot decode
 * spec 61's module errors), so `block` reports which of the given extrinsics made it in.
 */
import { ApiPromise, WsProvider } from '@polkadot/api'
import { Keyring } from '@polkadot/keyring'
import type { KeyringPair } from '@polkadot/keyring/types'
import type { SubmittableExtrinsic } from '@polkadot/api/types'
import { cryptoWaitReady } from '@polkadot/util-crypto'
import { startTfchain, tfchainSpec61Types, type Chopsticks } from '../pricing/chopsticks.js'

export type TfchainDev = {
  chain: Chopsticks
  api: ApiPromise
  keyring: Keyring
  alice: KeyringPair
  bob: KeyringPair
  /** Sign offline with the next nonce of `signer` (era 0). */
  sign(signer: KeyringPair, tx: SubmittableExtrinsic<'promise'>): Promise<string>
  /** Build one block with these signed extrinsics; returns its hash, number and events (section.method + JSON data). */
  block(txs?: string[]): Promise<{ hash: string; number: number; events: Array<{ name: string; data: unknown[] }>; included: number }>
  /** Set the free balance of `address` (base units, 10^-7 TFT), keeping its nonce. */
  fund(address: string, free: bigint): Promise<void>
  /** Set tftPrice and averageTftPrice (U16F16 LE hex); billing and cancelling fail with TFTPriceValueError without it. */
  setTftPrice(hex?: string): Promise<void>
  /** Move the chain's clock to `ms` (unix ms); the next block has this timestamp. */
  timeTravel(ms: number): Promise<void>
  /** timestamp.now of the head, ms. */
  now(): Promise<number>
  stop(): Promise<void>
}

export async function startTfchainDev(): Promise<TfchainDev> {
  const chain = await startTfchain()
  const api = await ApiPromise.create({ provider: new WsProvider(chain.wsUrl), types: tfchainSpec61Types as never, noInitWarn: true })
  await cryptoWaitReady()
  const keyring = new Keyring({ type: 'sr25519' })
  const alice = keyring.addFromUri('//Alice')
  const bob = keyring.addFromUri('//Bob')
  const nonces = new Map<string, number>()
  const nextNonce = async (address: string) => {
    // the state nonce, not accountNextIndex: chopsticks keeps a dropped (failed) extrinsic in its pool and counts it
    const n = nonces.get(address) ?? ((await api.query.system!.account!(address)) as unknown as { nonce: { toNumber(): number } }).nonce.toNumber()
    nonces.set(address, n + 1)
    return n
  }
  const dev: TfchainDev = {
    chain,
    api,
    keyring,
    alice,
    bob,
    async sign(signer, tx) {
      const signed = await tx.signAsync(signer, { nonce: await nextNonce(signer.address), era: 0 })
      return signed.toHex()
    },
    async block(txs = []) {
      const hash = await chain.rpc<string>('dev_newBlock', [txs.length ? { transactions: txs } : {}])
      const b = await api.rpc.chain.getBlock(hash)
      const records = (await api.query.system!.events!.at(hash)) as unknown as Array<{ event: { section: string; method: string; data: { toJSON(): unknown[] } } }>
      // the extrinsics not included keep their nonce unused: forget cached nonces
      const included = b.block.extrinsics.length - 1
      if (included !== txs.length) nonces.clear()
      return { hash, number: b.block.header.number.toNumber(), included, events: records.map((r) => ({ name: `${r.event.section}.${r.event.method}`, data: r.event.data.toJSON() })) }
    },
    async fund(address, free) {
      const info = (await api.query.system!.account!(address)) as unknown as { nonce: { toNumber(): number } }
      const value = api.createType('AccountInfo', { nonce: info.nonce.toNumber(), providers: 1, data: { free } }).toHex()
      await chain.rpc('dev_setStorage', [[[api.query.system!.account!.key(address), value]]])
    },
    async setTftPrice(hex = '0x52080000') {
      await chain.rpc('dev_setStorage', [[[api.query.tftPriceModule!.tftPrice!.key(), hex], [api.query.tftPriceModule!.averageTftPrice!.key(), hex]]])
    },
    async timeTravel(ms) {
      await chain.rpc('dev_timeTravel', [ms])
    },
    async now() {
      return Number((await api.query.timestamp!.now!()).toString())
    },
    async stop() {
      await api.disconnect().catch(() => {})
      await chain.stop()
    },
  }
  return dev
}

/**
 * Twins for Alice (1) and Bob (2), a farm (1) owned by Alice with six public IPv4 addresses (or `farmIps`: address
 * with prefix, and gateway) and a node (1) of Bob's in it; TFT price set.
 */
export async function setupGrid(dev: TfchainDev, o: { farmIps?: Array<{ ip: string; gateway: string }> } = {}): Promise<{ aliceTwin: number; bobTwin: number; farmId: number; nodeId: number }> {
  const { api, alice, bob } = dev
  await dev.fund(bob.address, 10_000_000_000n)
  await dev.setTftPrice()
  await dev.block([await dev.sign(alice, api.tx.tfgridModule!.userAcceptTc!('l', 'h')), await dev.sign(bob, api.tx.tfgridModule!.userAcceptTc!('l', 'h'))])
  await dev.block([await dev.sign(alice, api.tx.tfgridModule!.createTwin!('::1')), await dev.sign(bob, api.tx.tfgridModule!.createTwin!('::2'))])
  await dev.block([await dev.sign(alice, api.tx.tfgridModule!.createFarm!('farm1', []))])
  // public IPv4 addresses a node contract can reserve (IPsReserved), as a farmer adds them
  const farmIps = o.farmIps ?? [33, 34, 35, 36, 37, 38].map((n) => ({ ip: `185.206.122.${n}/24`, gateway: '185.206.122.1' }))
  const ips = []
  for (const f of farmIps) ips.push(await dev.sign(alice, api.tx.tfgridModule!.addFarmIp!(1, f.ip, f.gateway)))
  await dev.block(ips)
  const r = await dev.block([
    await dev.sign(bob, api.tx.tfgridModule!.createNode!(1, { hru: 1e12, sru: 1e12, cru: 8, mru: 16e9 }, { longitude: '1', latitude: '2' }, 'BE', 'Gent', [], false, false, 'x')),
  ])
  if (!r.events.some((e) => e.name === 'tfgridModule.NodeStored')) throw new Error(`grid setup failed: ${JSON.stringify(r.events)}`)
  return { aliceTwin: 1, bobTwin: 2, farmId: 1, nodeId: 1 }
}

/** Give `mnemonic`'s account TFT (`tft` whole TFT) and a twin; returns the twin id. */
export async function createTwinFor(dev: TfchainDev, mnemonic: string, tft = 10_000n): Promise<number> {
  const op = dev.keyring.addFromUri(mnemonic)
  await dev.fund(op.address, tft * 10_000_000n)
  await dev.block([await dev.sign(op, dev.api.tx.tfgridModule!.userAcceptTc!('l', 'h'))])
  const r = await dev.block([await dev.sign(op, dev.api.tx.tfgridModule!.createTwin!('::9'))])
  const stored = r.events.find((e) => e.name === 'tfgridModule.TwinStored')
  if (!stored) throw new Error(`createTwin failed: ${JSON.stringify(r.events)}`)
  return Number((stored.data[0] as { id: number }).id)
}
