/** `[providers.threefold]` through the daemon's config and the provider table: a cloud target over threefold offers. */
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { mnemonicGenerate } from '@polkadot/util-crypto'
import { parse } from 'smol-toml'
import { afterAll, describe, expect, test } from 'vitest'
import { createTestCommon } from '../../core/common.js'
import { usd } from '../../core/money.js'
import type { Offer } from '../../core/offer.js'
import { parseConfig } from '../../daemon/config.js'
import { createTargets } from '../../daemon/targets.js'

const { common, shutdown } = createTestCommon()
const dataDir = mkdtempSync(join(tmpdir(), 'bpo-tf-'))
const mnemonic = mnemonicGenerate()
const env = { OPERATOR_PRIVATE_KEY: '0x' + 'ab'.repeat(32), TF_MNEMONIC: mnemonic }
const config = (tf: string) =>
  parseConfig(
    parse(`
[operator]
id = "op-1"
data_dir = ${JSON.stringify(dataDir)}
[chain]
rpc_url = "http://127.0.0.1:8545"
chain_id = 31337
private_key = "env:OPERATOR_PRIVATE_KEY"
registry = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
escrow = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"
[providers.threefold]
${tf}
`),
    { env },
  )
const offer = (provider: Offer['provider'], instanceType: string): Offer => ({
  provider, source: 's', fetchedAt: 0, region: 'BE', instanceType, vcpu: 2, memoryGiB: 4, gpu: { count: 0 }, includedStorageGiB: 0, hourlyUsd: usd('0.02'),
})
afterAll(async () => {
  await shutdown()
})

describe('[providers.threefold]', () => {
  test('default: an enabled section is a "threefold" cloud target over the catalog\'s threefold offers only', async () => {
    // TFChain does not answer: the start-up twin check is logged and the target built (the worker checks at its init)
    const c = config('enabled = true\nmnemonic = "env:TF_MNEMONIC"\ntwin_id = 42\nmin_runway_hours = 48\nfarms = [1]\nsubstrate_url = "ws://127.0.0.1:9"')
    expect(c.providers.threefold).toMatchObject({ enabled: true, twinId: 42, minRunwayHours: 48, tftBuffer: '0.02', farms: [1], maxInstances: 20, network: 'main' })
    expect(JSON.stringify(c.providers.threefold)).not.toContain(mnemonic)
    const offers = [offer('threefold', 'node-1/2c-4g'), offer('aws', 't3.medium')]
    const targets = await createTargets(common, c, { catalogOffers: () => offers })
    const t = targets.byName('threefold')!
    expect(t).toMatchObject({ kind: 'cloud', provider: 'threefold', maxInstances: 20 })
    expect(t.offersFor({} as never).map((o) => o.instanceType)).toEqual(['node-1/2c-4g'])
    expect(t.provisioner.sourceKinds).toEqual(['native'])
    await targets.close()
  })

  test('behavior: a disabled section builds no target', async () => {
    const targets = await createTargets(common, config('enabled = false'))
    expect(targets.byName('threefold')).toBeUndefined()
    await targets.close()
  })

  test('error: a literal mnemonic, a missing one, a missing twin id, a buffer above 1 are config problems with their paths', () => {
    expect(() => config('enabled = true\nmnemonic = "word word word"\ntwin_id = 42')).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID', problems: [expect.objectContaining({ path: 'providers.threefold.mnemonic' })] }))
    expect(() => config('enabled = true\ntft_buffer = "2"')).toThrow(
      expect.objectContaining({
        problems: expect.arrayContaining([expect.objectContaining({ path: 'providers.threefold.mnemonic' }), expect.objectContaining({ path: 'providers.threefold.tft_buffer' }), expect.objectContaining({ path: 'providers.threefold.twin_id' })]),
      }),
    )
  })
})
