import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, test } from 'vitest'
import { compileContracts, contractNames } from './compile.js'

describe('compileContracts', () => {
  const dirs: string[] = []
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true })
  })

  test('default: compiles every contract and caches the artifacts by content', async () => {
    const cacheDir = await mkdtemp(join(tmpdir(), 'bp-solc-'))
    dirs.push(cacheDir)
    const first = await compileContracts({ cacheDir })
    for (const name of contractNames) {
      expect(first[name].bytecode).toMatch(/^0x[0-9a-f]{200,}$/)
      expect(first[name].abi.length).toBeGreaterThan(0)
    }
    const files = await readdir(cacheDir)
    expect(files).toHaveLength(1)
    expect(files[0]).toMatch(/^[0-9a-f]{64}\.json$/)
    const second = await compileContracts({ cacheDir })
    expect(second).toEqual(first)
  })

  test('error: CONTRACT_COMPILE_FAILED names solc\'s errors; nothing is cached', async () => {
    const cacheDir = await mkdtemp(join(tmpdir(), 'bp-solc-'))
    dirs.push(cacheDir)
    const broken = compileContracts({ cacheDir, patch: (name, src) => (name === 'TestStablecoin' ? src.replace('uint8 public constant decimals = 6;', 'uint8 public constant decimals = 6') : src) })
    await expect(broken).rejects.toMatchObject({ code: 'CONTRACT_COMPILE_FAILED', retryable: false, details: [expect.stringMatching(/TestStablecoin\.sol/)] })
    expect(await readdir(cacheDir)).toEqual([])
  })
})
