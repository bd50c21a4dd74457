/**
 * The SSH pool and the host agent against a real sshd on 127.0.0.1: the errors of a closed pool, a failed SFTP
 * transfer and a remote command that exits non-zero.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { createTestCommon } from '../../core/common.js'
import { sshdMissing, startSshd, type Sshd } from '../../test/helpers/sshd.js'
import { createSshPool, type SshPool } from './connection.js'
import { RemoteCommandError } from './errors.js'
import { createHostAgent } from './hostAgent.js'
import type { SshHost } from './types.js'

const noSshd = sshdMissing()
if (noSshd) test.skip(`real sshd suites: ${noSshd}`, () => undefined)

const { common, shutdown } = createTestCommon()
let sshd: Sshd
let host: SshHost
let pool: SshPool
let root: string

beforeAll(async () => {
  if (noSshd) return
  sshd = await startSshd()
  root = mkdtempSync(join(tmpdir(), 'bpo-ssh-pool-'))
  host = {
    name: 'h1',
    address: sshd.address,
    port: sshd.port,
    user: sshd.user,
    privateKey: sshd.privateKey,
    hostKey: sshd.hostKey,
    capacity: { vcpu: 1, memoryGiB: 1, storageGiB: 1 },
    hourlyUsd: '0.01',
    remoteRoot: join(root, 'remote'),
  }
  pool = createSshPool(common, { connectTimeoutMs: 10_000, commandTimeoutMs: 30_000 })
})
afterAll(async () => {
  await pool?.close()
  await sshd?.stop()
  if (root) rmSync(root, { recursive: true, force: true })
  await shutdown()
})

describe.skipIf(!!noSshd)('createSshPool (real sshd)', () => {
  test('default: a command runs and a file is written over SFTP', async () => {
    const r = await pool.exec(host, ['sh', '-c', 'echo "$1"', 'sh', 'it works'])
    expect(r).toMatchObject({ code: 0, stdout: 'it works\n' })
    const file = join(root, 'written')
    await pool.writeFile(host, file, 'data\n', 0o600)
    expect(readFileSync(file, 'utf8')).toBe('data\n')
  })

  test('error: an SFTP write into a directory that does not exist is SSH_SFTP_FAILED (retryable), nothing written', async () => {
    const file = join(root, 'no-such-dir', 'x')
    const err = await pool.writeFile(host, file, 'data\n', 0o600).then(
      () => undefined,
      (e: unknown) => e as { code?: string; retryable?: boolean; message: string },
    )
    expect(err).toMatchObject({ code: 'SSH_SFTP_FAILED', retryable: true })
    expect(err!.message).toContain(`write ${file} on h1 failed`)
    expect(existsSync(file)).toBe(false)
    // the connection stays usable
    expect((await pool.exec(host, ['true'])).code).toBe(0)
  })

  test('error: a host agent command that exits non-zero is SSH_REMOTE_COMMAND_FAILED with the tail of its stderr', async () => {
    const agent = createHostAgent(common, pool, 'op-test')
    const err = await agent.must(host, 'asking for nonsense', ['no-such-command']).then(
      () => undefined,
      (e: unknown) => e as RemoteCommandError,
    )
    expect(err).toBeInstanceOf(RemoteCommandError)
    expect(err).toMatchObject({ code: 'SSH_REMOTE_COMMAND_FAILED', reason: 'PROVISION_FAILED', retryable: false })
    expect(err!.exitCode).not.toBe(0)
    expect(err!.message).toContain('asking for nonsense failed on h1')
    expect(err!.details.join('\n')).toContain('unknown command')
    // the agent itself works: the same call with a real command succeeds
    expect(await agent.must(host, 'detecting host facts', ['facts'])).toContain('uid=')
  })

  test('error: a closed pool refuses every call with SSH_POOL_CLOSED, before connecting', async () => {
    const p = createSshPool(common)
    expect((await p.exec(host, ['true'])).code).toBe(0)
    await p.close()
    await expect(p.exec(host, ['true'])).rejects.toMatchObject({ code: 'SSH_POOL_CLOSED' })
    await expect(p.writeFile(host, join(root, 'after-close'), 'x', 0o600)).rejects.toMatchObject({ code: 'SSH_POOL_CLOSED' })
    expect(existsSync(join(root, 'after-close'))).toBe(false)
  })
})
