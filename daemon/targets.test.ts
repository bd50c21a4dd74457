import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parse } from 'smol-toml'
import { afterAll, describe, expect, test } from 'vitest'
import { createTestCommon } from '../core/common.js'
import { parseConfig } from './config.js'
import { createTargets } from './targets.js'

const { common, shutdown } = createTestCommon()
const dataDir = mkdtempSync(join(tmpdir(), 'bpo-targets-'))
const env = { OPERATOR_PRIVATE_KEY: '0x' + 'ab'.repeat(32) }
const config = (local: string) =>
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
[providers.local]
${local}
`),
    { env },
  )

afterAll(async () => {
  rmSync(dataDir, { recursive: true, force: true })
  await shutdown()
})

describe('createTargets', () => {
  test('default: the local target is built from [providers.local]', async () => {
    const targets = await createTargets(common, config('enabled = true'))
    expect(targets.list().map((t) => t.name)).toEqual(['local'])
    await targets.close()
  })

  test('error: a local workload_user that does not exist stops the start-up with CONFIG_INVALID', async () => {
    const c = config('workload_user = "bpo-no-such-user"')
    expect(c.providers.local?.workloadUser).toBe('bpo-no-such-user')
    const expected = process.getuid?.() === 0 ? /no user bpo-no-such-user/ : /needs the daemon to run as root/
    await expect(createTargets(common, c)).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringMatching(expected) })
  })

  test('error: a malformed workload_user is a config problem with its path', () => {
    expect(() => config('workload_user = "Root;x"')).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID', problems: [expect.objectContaining({ path: 'providers.local.workload_user', message: expect.stringMatching(/expected a POSIX user name/) })] }),
    )
  })
})
