/**
 * `[providers.threefold] twin_id` against the mnemonic's twin, on a TFChain runtime (spec 61) under chopsticks: the
 * check itself, the daemon's start-up (the provider table refuses to build the grid target), and the grid worker's
 * init (the supervisor refuses a worker whose mnemonic is another twin's).
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { mnemonicGenerate } from '@polkadot/util-crypto'
import { parse } from 'smol-toml'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { createTestCommon } from '../../core/common.js'
import { parseConfig } from '../../daemon/config.js'
import { createTargets } from '../../daemon/targets.js'
import { tfchainSpec61Types } from '../../test/pricing/chopsticks.js'
import { tfchainSpec61TypesFile } from '../../test/helpers/gridFarm.js'
import { createTwinFor, setupGrid, startTfchainDev, type TfchainDev } from '../../test/helpers/tfchain.js'
import { checkTwin } from './checkTwin.js'
import { createGridSupervisor } from './createGridSupervisor.js'

const chainWorker = fileURLToPath(new URL('../../test/fakes/grid-worker-chain.cjs', import.meta.url))
const { common, shutdown } = createTestCommon()
let dev: TfchainDev
let mine: string
let myTwin: number
let otherTwin: number
let dir: string

beforeAll(async () => {
  dev = await startTfchainDev()
  await setupGrid(dev)
  mine = mnemonicGenerate()
  myTwin = await createTwinFor(dev, mine)
  otherTwin = await createTwinFor(dev, mnemonicGenerate())
  dir = mkdtempSync(join(tmpdir(), 'bpo-twin-'))
}, 120_000)
afterAll(async () => {
  await dev?.stop()
  if (dir) rmSync(dir, { recursive: true, force: true })
  await shutdown()
})

const rejection = async (p: Promise<unknown>) => p.then(() => { throw new Error('expected a rejection') }, (err: unknown) => err as Error & { code: string; retryable: boolean; meta: Record<string, unknown> })

describe('checkTwin (chopsticks, spec 61)', () => {
  test('default: the configured twin is the mnemonic\'s', async () => {
    const r = await checkTwin({ url: dev.chain.wsUrl, types: tfchainSpec61Types, mnemonic: mine, twinId: myTwin })
    expect(r).toEqual({ address: dev.keyring.addFromUri(mine).address, twinId: myTwin })
  })

  test('error: another twin\'s id, an account without a twin, a phrase that is no mnemonic: GRID_TWIN_MISMATCH, never retried, the phrase never shown', async () => {
    const other = await rejection(checkTwin({ url: dev.chain.wsUrl, types: tfchainSpec61Types, mnemonic: mine, twinId: otherTwin }))
    expect(other).toMatchObject({ code: 'GRID_TWIN_MISMATCH', retryable: false, meta: { configured: otherTwin, actual: myTwin } })
    expect(other.message).toContain(`is twin ${myTwin}`)
    const lonely = mnemonicGenerate()
    const none = await rejection(checkTwin({ url: dev.chain.wsUrl, types: tfchainSpec61Types, mnemonic: lonely, twinId: myTwin }))
    expect(none).toMatchObject({ code: 'GRID_TWIN_MISMATCH', meta: { actual: 0 } })
    expect(none.message).toContain('has no twin on this TFChain')
    const phrase = 'correct horse battery staple is not a mnemonic at all'
    const bad = await rejection(checkTwin({ url: dev.chain.wsUrl, types: tfchainSpec61Types, mnemonic: phrase, twinId: myTwin }))
    expect(bad).toMatchObject({ code: 'GRID_TWIN_MISMATCH' })
    for (const e of [other, none, bad]) expect(`${e.message}${JSON.stringify(e.meta)}`).not.toContain(e === bad ? phrase : e === none ? lonely : mine)
  })

  test('error: a TFChain that does not answer is RPC_UNAVAILABLE (retryable)', async () => {
    const err = await rejection(checkTwin({ url: 'ws://127.0.0.1:9', mnemonic: mine, twinId: myTwin, timeoutMs: 10_000 }))
    expect(err).toMatchObject({ code: 'RPC_UNAVAILABLE', retryable: true })
  })
})

describe('the twin check in the daemon', () => {
  const config = (twinId: number) =>
    parseConfig(
      parse(`
[operator]
id = "op-twin"
data_dir = ${JSON.stringify(dir)}
[chain]
rpc_url = "http://127.0.0.1:8545"
chain_id = 31337
private_key = "env:OPERATOR_PRIVATE_KEY"
registry = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
escrow = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"
[providers.threefold]
enabled = true
mnemonic = "env:TF_MNEMONIC"
twin_id = ${twinId}
substrate_url = ${JSON.stringify(dev.chain.wsUrl)}
tfchain_types = ${JSON.stringify(tfchainSpec61TypesFile)}
`),
      { env: { OPERATOR_PRIVATE_KEY: `0x${'ab'.repeat(32)}`, TF_MNEMONIC: mine } },
    )

  test('behavior: at start-up, the grid target is built for the mnemonic\'s twin and refused for another (GRID_TWIN_MISMATCH)', async () => {
    const ok = await createTargets(common, config(myTwin))
    expect(ok.byName('threefold')).toBeDefined()
    await ok.close()
    const err = await rejection(createTargets(common, config(otherTwin)))
    expect(err).toMatchObject({ code: 'GRID_TWIN_MISMATCH', retryable: false, meta: { configured: otherTwin, actual: myTwin } })
  })

  test('behavior: the supervisor refuses a grid worker whose mnemonic is another twin\'s (checked at every init)', async () => {
    const init = (twinId: number) => async () => ({ mnemonic: mine, twinId, network: 'dev' as const, substrateUrl: dev.chain.wsUrl, relayUrl: 'ws://127.0.0.1:9', proxyUrl: 'http://127.0.0.1:9' })
    const good = createGridSupervisor(common, { workerPath: chainWorker, init: init(myTwin), startTimeoutMs: 20_000 })
    try {
      expect(await good.call('ping', {}, { timeoutMs: 30_000 })).toMatchObject({ initialized: true })
    } finally {
      await good.close()
    }
    const wrong = createGridSupervisor(common, { workerPath: chainWorker, init: init(otherTwin), startTimeoutMs: 20_000, minBackoffMs: 60_000 })
    try {
      const err = await rejection(wrong.call('ping', {}, { timeoutMs: 30_000 }))
      expect(err).toMatchObject({ code: 'GRID_TWIN_MISMATCH', meta: { configured: otherTwin, actual: myTwin } })
    } finally {
      await wrong.close()
    }
  })
})
