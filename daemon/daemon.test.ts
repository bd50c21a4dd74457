/**
 * startDaemon's own refusals, before any chain I/O: a part that cannot start fails the start with STARTUP_FAILED
 * naming the part, and nothing it started is left behind.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, test } from 'vitest'
import { createTestCommon } from '../core/common.js'
import { parseConfig } from './config.js'
import { startDaemon } from './daemon.js'

const dirs: string[] = []
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

function config(dataDir: string) {
  const registry = `0x${'11'.repeat(20)}`
  return parseConfig(
    {
      operator: { id: 'op-start', data_dir: dataDir },
      chain: { rpc_url: 'http://127.0.0.1:1', chain_id: 31337, private_key: 'env:K', registry, escrow: registry },
      http: { listen: '127.0.0.1:0' },
      providers: { local: { enabled: true, vcpu: 1, memory_gib: 1 } },
    },
    { env: { K: `0x${'ab'.repeat(32)}` } },
  )
}

describe('startDaemon', () => {
  test('error: a data dir that is a file (the state store cannot be created) is STARTUP_FAILED naming the part', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bpo-start-'))
    dirs.push(dir)
    const notADir = join(dir, 'data')
    writeFileSync(notADir, 'a file where the data dir should be\n')
    const { common, shutdown } = createTestCommon()
    try {
      const err = await startDaemon({ config: config(notADir), common }).then(
        () => undefined,
        (e: unknown) => e as { code?: string; retryable?: boolean; shortMessage?: string; cause?: { code?: string } },
      )
      expect(err).toMatchObject({ code: 'STARTUP_FAILED', retryable: false, shortMessage: 'could not start state store' })
      // the file system's own refusal is kept as the cause (EEXIST from a recursive mkdir over a file)
      expect(['EEXIST', 'ENOTDIR']).toContain(err!.cause?.code)
      // the file is left as it was
      expect(readFileSync(notADir, 'utf8')).toBe('a file where the data dir should be\n')
    } finally {
      await shutdown()
    }
  })
})
