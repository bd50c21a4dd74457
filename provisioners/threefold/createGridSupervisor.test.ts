/**
 * The grid worker supervisor: the real worker (worker/gridWorker.cjs with the real @threefold/grid_client) for
 * what runs without the grid, and a worker speaking the same protocol (test/fakes/grid-worker.cjs) for crashes,
 * hangs and restarts.
 */
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Keyring } from '@polkadot/keyring'
import { hexToU8a } from '@polkadot/util'
import { cryptoWaitReady, mnemonicGenerate, signatureVerify } from '@polkadot/util-crypto'
import { afterEach, describe, expect, test } from 'vitest'
import { createTestCommon } from '../../core/common.js'
import { failoverOf } from '../errors.js'
import { createGridSupervisor, type GridSupervisor, type GridSupervisorParameters } from './createGridSupervisor.js'
import type { GridVmSpec } from './protocol.js'

const fakeWorker = fileURLToPath(new URL('../../test/fakes/grid-worker.cjs', import.meta.url))
const { common } = createTestCommon()
const mnemonic = mnemonicGenerate()
const open: GridSupervisor[] = []
const supervise = (o: Partial<GridSupervisorParameters> = {}) => {
  const s = createGridSupervisor(common, {
    init: async () => ({ mnemonic, network: 'dev', substrateUrl: 'ws://127.0.0.1:1', relayUrl: 'ws://127.0.0.1:1', proxyUrl: 'http://127.0.0.1:1', twinId: 42, connect: false }),
    minBackoffMs: 50,
    ...o,
  })
  open.push(s)
  return s
}
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()))
})
const vm = (o: Partial<GridVmSpec> = {}): GridVmSpec => ({
  name: 'bp-1-7-r0',
  nodeId: 11,
  cpu: 2,
  memoryMb: 2048,
  rootfsGb: 2,
  diskGb: 10,
  flist: 'https://hub.grid.tf/tf-official-apps/base:latest.flist',
  entrypoint: '/sbin/zinit init',
  env: { PORT: '8080' },
  publicIp: true,
  networkName: 'bp17',
  deploymentId: 'bp-1-7',
  ...o,
})

describe('createGridSupervisor (real worker, real grid_client)', () => {
  test('default: the child starts, is initialized over IPC, and the mnemonic is in neither its argv nor its env', async () => {
    const s = supervise()
    const r = await s.call('ping', {})
    expect(r).toEqual({ pid: s.pid(), initialized: true })
    expect(r.pid).not.toBe(process.pid)
    const cmdline = readFileSync(`/proc/${r.pid}/cmdline`, 'utf8')
    const environ = readFileSync(`/proc/${r.pid}/environ`, 'utf8')
    expect(cmdline).toContain('gridWorker.cjs')
    for (const word of mnemonic.split(' ').slice(0, 3)) expect(cmdline + environ).not.toContain(`${word} ${mnemonic.split(' ')[1]}`)
    expect(cmdline + environ).not.toContain(mnemonic)
  })

  test('behavior: buildVm builds the Zero-OS deployment with grid_client\'s primitives and signs its challenge with the mnemonic', async () => {
    const s = supervise()
    const r = await s.call('buildVm', vm())
    expect(r.workloads).toEqual([
      { type: 'zmount', name: 'bp-1-7-r0d' },
      { type: 'ip', name: 'bp-1-7-r0ip' },
      { type: 'zmachine', name: 'bp-1-7-r0' },
    ])
    expect(r.challengeHash).toMatch(/^[0-9a-f]{32}$/)
    const d = r.deployment as { twin_id: number; signature_requirement: { signatures: Array<{ twin_id: number; signature: string; signature_type: string }> }; workloads: Array<{ data: Record<string, unknown> }> }
    expect(d.twin_id).toBe(42)
    const zm = d.workloads[2]!.data as { flist: string; compute_capacity: { cpu: number; memory: number }; env: Record<string, string>; network: { public_ip: string } }
    expect(zm.flist).toBe(vm().flist)
    expect(zm.compute_capacity).toEqual({ cpu: 2, memory: 2048 * 1024 ** 2 })
    expect(zm.env).toEqual({ PORT: '8080' })
    expect(zm.network.public_ip).toBe('bp-1-7-r0ip')
    const sig = d.signature_requirement.signatures.find((x) => x.twin_id === 42)!
    expect(sig.signature_type).toBe('sr25519')
    await cryptoWaitReady()
    const pair = new Keyring({ type: 'sr25519' }).addFromUri(mnemonic)
    expect(signatureVerify(hexToU8a(r.challengeHash), hexToU8a(`0x${sig.signature}`), pair.address).isValid).toBe(true)
  })

  test('error: a bad VM spec is GRID_BAD_REQUEST; an unknown op GRID_UNKNOWN_OP; ops needing the grid before connect GRID_NOT_INITIALIZED', async () => {
    const s = supervise()
    await expect(s.call('buildVm', vm({ flist: 'http://insecure/x.flist' }))).rejects.toMatchObject({ code: 'GRID_BAD_REQUEST', retryable: false })
    await expect(s.call('nope' as 'ping', {})).rejects.toMatchObject({ code: 'GRID_UNKNOWN_OP' })
    await expect(s.call('balance', {})).rejects.toMatchObject({ code: 'GRID_NOT_INITIALIZED' })
  })

  test('error: the real worker installed where @threefold/grid_client does not resolve is GRID_CLIENT_UNAVAILABLE (not retryable)', async () => {
    // the shipped worker files, copied outside the repository: nothing above them holds node_modules
    const dir = mkdtempSync(join(tmpdir(), 'bpo-gridworker-'))
    try {
      for (const f of ['gridWorker.cjs', 'buildVm.cjs']) copyFileSync(fileURLToPath(new URL(`./worker/${f}`, import.meta.url)), join(dir, f))
      const s = supervise({ workerPath: join(dir, 'gridWorker.cjs') })
      expect((await s.call('ping', {})).initialized).toBe(true)
      const err = await s.call('buildVm', vm()).catch((e: unknown) => e)
      expect(err).toMatchObject({ code: 'GRID_CLIENT_UNAVAILABLE', retryable: false })
      expect(String((err as Error).message)).toContain('@threefold/grid_client does not load')
      // the worker itself keeps answering
      expect((await s.call('ping', {})).initialized).toBe(true)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  test('error: connecting to an unreachable grid is GRID_CONNECT_FAILED (retryable); the daemon gains no signal handlers', async () => {
    const before = ['SIGINT', 'SIGTERM', 'SIGUSR1', 'SIGUSR2'].map((sg) => process.listenerCount(sg))
    const s = supervise({
      init: async () => ({ mnemonic, network: 'dev', substrateUrl: 'ws://127.0.0.1:9', relayUrl: 'ws://127.0.0.1:9', proxyUrl: 'http://127.0.0.1:9', graphqlUrl: 'http://127.0.0.1:9/graphql' }),
      startTimeoutMs: 30_000,
    })
    const err = await s.call('ping', {}, { timeoutMs: 40_000 }).catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'GRID_CONNECT_FAILED', retryable: true })
    expect(String((err as Error).message)).not.toContain(mnemonic)
    expect(['SIGINT', 'SIGTERM', 'SIGUSR1', 'SIGUSR2'].map((sg) => process.listenerCount(sg))).toEqual(before)
  }, 60_000)
})

describe('createGridSupervisor (protocol worker)', () => {
  test('behavior: a child that dies during a call fails it with GRID_WORKER_CRASHED and is restarted with backoff', async () => {
    const s = supervise({ workerPath: fakeWorker })
    const first = (await s.call('ping', {})).pid
    await expect(s.call('deployVm', vm({ name: 'crash' }))).rejects.toMatchObject({ code: 'GRID_WORKER_CRASHED', retryable: true })
    const second = await s.call('ping', {})
    expect(second.pid).not.toBe(first)
    expect(second.initialized).toBe(true)
    expect(s.starts()).toBe(2)
  })

  test('behavior: a call that does not answer times out with GRID_WORKER_TIMEOUT, the stuck child is replaced', async () => {
    const s = supervise({ workerPath: fakeWorker })
    const first = (await s.call('ping', {})).pid
    await expect(s.call('deployVm', vm({ name: 'hang' }), { timeoutMs: 300 })).rejects.toMatchObject({ code: 'GRID_WORKER_TIMEOUT', retryable: true })
    expect((await s.call('ping', {})).pid).not.toBe(first)
  })

  test('behavior: concurrent calls are matched to their answers by id', async () => {
    const s = supervise({ workerPath: fakeWorker })
    const [a, b, c] = await Promise.all([s.call('deployVm', vm({ name: 'slow' })), s.call('deployVm', vm({ name: 'bp-a' })), s.call('ping', {})])
    expect(a.contracts[0]!.deploymentName).toBe('slow')
    expect(b.contracts[0]!.deploymentName).toBe('bp-a')
    expect(c.initialized).toBe(true)
  })

  test('behavior: a worker error keeps its code and failover class (placement moves to the next offer)', async () => {
    const s = supervise({ workerPath: fakeWorker })
    const err = await s.call('deployVm', vm({ name: 'full' })).catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'GRID_DEPLOY_FAILED' })
    expect(failoverOf(err)).toEqual({ kind: 'capacity', scope: 'offer' })
  })

  test('behavior: close shuts the child down and later calls are refused', async () => {
    const s = supervise({ workerPath: fakeWorker })
    const pid = (await s.call('ping', {})).pid
    await s.close()
    expect(() => process.kill(pid, 0)).toThrow()
    await expect(s.call('ping', {})).rejects.toMatchObject({ code: 'ABORTED' })
  })
})
