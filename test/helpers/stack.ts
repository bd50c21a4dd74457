/**
 * The whole stack for end-to-end tests: a real anvil chain with the contracts, a real artifact server serving the
 * demo service, and the daemon (in-process or as a child process) with the local provisioner.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import Database from 'better-sqlite3'
import { stringify } from 'smol-toml'
import { decodeEventLog, type Hex } from 'viem'
import { createTestCommon } from '../../core/common.js'
import { sleep } from '../../core/retry.js'
import { parseConfig, type OperatorConfig } from '../../daemon/config.js'
import { serviceEscrowAbi } from '../../chain/contracts/abi.js'
import { bytes32ToReason } from '../../chain/evm/reason.js'
import { startArtifactServer, type ArtifactServer } from '../../daemon/dev/artifact-server.js'
import { startDaemon, type Daemon } from '../../daemon/daemon.js'
import { createLocalProvisioner } from '../../provisioners/local/createLocalProvisioner.js'
import type { State } from '../../daemon/state.js'
import { createTestChain, type TestChain } from './anvil.js'

export const demoServicePath = fileURLToPath(new URL('../../daemon/dev/demo-service.mjs', import.meta.url))
export const binPath = fileURLToPath(new URL('../../bin/blueprint-operator.mjs', import.meta.url))

/** Poll `fn` until it returns a truthy value; fails with `what` after `timeoutMs`. */
export async function waitFor<T>(what: string, fn: () => Promise<T> | T, timeoutMs = 30_000, everyMs = 100): Promise<Exclude<T, false | null | undefined | 0 | "">> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const v = await fn()
      if (v) return v as Exclude<T, false | null | undefined | 0 | "">
    } catch (err) {
      last = err
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`)
    await sleep(everyMs)
  }
}

/** Pids of live processes whose environment carries BPO_DEPLOYMENT=`deploymentId` (and BPO_OWNER=`owner`). */
/**
 * Resolves once `pid` has died (gone, or a zombie waiting to be reaped). A signal is delivered when the process is
 * next scheduled: until then a connection can still land on it and be dropped with it, which no balancer can undo.
 */
export async function exited(pid: number, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs
  for (;;) {
    let stat: string
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'latin1')
    } catch {
      return
    }
    if (/\) Z /.test(stat)) return
    if (Date.now() > until) throw new Error(`process ${pid} still alive after ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

export function processesOf(deploymentId: string, owner?: string): number[] {
  const pids: number[] = []
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue
    try {
      const env = readFileSync(`/proc/${d}/environ`, 'latin1').split('\0')
      const stat = readFileSync(`/proc/${d}/stat`, 'latin1')
      if (/\) Z /.test(stat)) continue // zombie
      if (env.includes(`BPO_DEPLOYMENT=${deploymentId}`) && (!owner || env.includes(`BPO_OWNER=${owner}`))) pids.push(Number(d))
    } catch {
      // gone or not ours to read
    }
  }
  return pids
}

export type StackOptions = {
  operatorId?: string
  confirmations?: number
  loopMs?: number
  attempts?: number
  /** Extra TOML tables merged over the defaults. */
  extra?: Record<string, unknown>
  /** Seconds between blocks; 0 = only when a transaction or the test mines one. Default 1. */
  blockTime?: number
  intercept?: Parameters<typeof startArtifactServer>[1]['intercept']
}

export type Stack = {
  chain: TestChain
  artifacts: ArtifactServer
  dataDir: string
  operatorId: string
  /** The TOML document for the daemon (without the key, which is passed by reference). */
  doc: Record<string, unknown>
  config(): OperatorConfig
  operatorKey: Hex
  /** Register the demo service as a native blueprint (1000 base units per second for basic). */
  registerDemo(o?: { sha256?: string; url?: string; vcpuMilli?: number; prices?: bigint[]; name?: string }): Promise<bigint>
  /** Service record as persisted by the daemon (read from its database, so it works for child daemons too). */
  service(id: bigint | string): State['services'][string] | undefined
  /** Refunded events of a service, decoded: amount and reason code. */
  refunds(id: bigint): Promise<Array<{ amount: bigint; reason: string }>>
  events(id: bigint, name: 'ServiceActivated' | 'Withdrawn' | 'Refunded' | 'PaymentReceived'): Promise<Array<Record<string, unknown>>>
  /** Jump chain time forward by `seconds` and mine a block there. */
  travel(seconds: bigint): Promise<void>
  stop(): Promise<void>
}

export async function startStack(o: StackOptions = {}): Promise<Stack> {
  const chain = await createTestChain(o.blockTime === 0 ? {} : { blockTime: o.blockTime ?? 1 })
  const { common } = createTestCommon()
  const artifacts = await startArtifactServer(common, { files: { 'demo-service': readFileSync(demoServicePath) }, ...(o.intercept && { intercept: o.intercept }) })
  const dataDir = mkdtempSync(join(tmpdir(), 'bpo-e2e-'))
  const operatorId = o.operatorId ?? `e2e-${Math.random().toString(36).slice(2, 8)}`
  const operatorKey = chain.anvil.accounts[1]!.privateKey
  // a range of its own per stack, so suites running side by side rarely meet on a port
  const portBase = 22_000 + Math.floor(Math.random() * 95) * 100
  const doc: Record<string, unknown> = {
    operator: { id: operatorId, data_dir: dataDir },
    chain: {
      rpc_url: chain.rpcUrl,
      chain_id: chain.chainId,
      private_key: 'env:BPO_TEST_OPERATOR_KEY',
      registry: chain.addresses.registry,
      escrow: chain.addresses.escrow,
      confirmations: o.confirmations ?? 1,
      poll_interval_ms: 100,
      start_block: Number(chain.addresses.deployBlock),
    },
    loop: { interval_ms: o.loopMs ?? 300 },
    deploy: { attempts: o.attempts ?? 2, backoff_ms: 100, health_timeout_ms: 15_000 },
    http: { enabled: false },
    log: { level: process.env.LOG_LEVEL ?? 'silent' },
    // replicas run as the test's own uid unless a suite sets workload_uids (test/e2e/isolation.test.ts does)
    providers: { local: { enabled: true, vcpu: 4, memory_gib: 8, storage_gib: 20, hourly_usd: '0.01', port_range: [portBase, portBase + 99], unsafe_workloads_share_daemon_uid: true } },
    ...o.extra,
  }
  // the test artifact server listens on 127.0.0.1, which artifact downloads may reach only when allowed
  const providers = (doc.providers ??= {}) as Record<string, unknown>
  providers.artifact_allow_hosts ??= ['127.0.0.1']
  const getEvents = async (id: bigint, name: string) => {
    const logs = await chain.publicClient.getLogs({ address: chain.addresses.escrow, fromBlock: 0n, toBlock: 'latest' })
    const out: Array<Record<string, unknown>> = []
    for (const l of logs) {
      try {
        const e = decodeEventLog({ abi: serviceEscrowAbi, data: l.data, topics: l.topics })
        if (e.eventName === name && (e.args as { serviceId?: bigint }).serviceId === id) out.push({ ...(e.args as object), blockNumber: l.blockNumber })
      } catch {
        // another contract's log
      }
    }
    return out
  }
  return {
    chain,
    artifacts,
    dataDir,
    operatorId,
    doc,
    operatorKey,
    config: () => parseConfig(doc, { env: { BPO_TEST_OPERATOR_KEY: operatorKey }, baseDir: dataDir }),
    async registerDemo(r = {}) {
      return chain.registerBlueprint({
        name: r.name ?? 'demo',
        sources: [{ kind: 'native', url: r.url ?? artifacts.urlOf('demo-service'), sha256: r.sha256 ?? artifacts.sha256('demo-service') }],
        requirements: { vcpuMilli: r.vcpuMilli ?? 250, memoryMiB: 128, storageGiB: 0, ports: [8080] },
        pricePerHour: r.prices ?? [3_600_000n, 7_200_000n, 14_400_000n],
      })
    },
    service(id) {
      // the daemon's embedded database, read as another process would (WAL: readers never block the writer)
      try {
        const db = new Database(join(dataDir, 'state.sqlite'), { readonly: true, fileMustExist: true })
        try {
          const json = db.prepare('SELECT json FROM services WHERE id = ?').pluck().get(String(id)) as string | undefined
          return json ? (JSON.parse(json) as State['services'][string]) : undefined
        } finally {
          db.close()
        }
      } catch {
        return undefined
      }
    },
    async refunds(id) {
      return (await getEvents(id, 'Refunded')).map((e) => ({ amount: e.amount as bigint, reason: bytes32ToReason(e.reason as Hex) }))
    },
    events: getEvents,
    async travel(seconds) {
      await chain.mineAt((await chain.now()) + seconds)
    },
    async stop() {
      // whatever the daemons of this stack left running (replicas outlive a daemon by design) goes now
      const local = createLocalProvisioner(common, { rootDir: join(dataDir, 'local'), operatorId })
      for (const o of await local.listOwned()) await local.destroy(o.deploymentId)
      await local.close()
      await artifacts.stop()
      await chain.stop()
    },
  }
}

/** Start the daemon in this process. */
export async function startInProcess(stack: Stack): Promise<{ daemon: Daemon; stop(): Promise<void> }> {
  const { common, shutdown } = createTestCommon()
  const daemon = await startDaemon({ config: stack.config(), common })
  return {
    daemon,
    async stop() {
      // tests leave nothing behind: whatever this daemon owns on any target goes before it stops
      for (const prov of daemon.targets.provisioners()) {
        for (const o of await prov.listOwned().catch(() => [])) await prov.destroy(o.deploymentId).catch(() => undefined)
      }
      await daemon.stop()
      await shutdown(5000)
    },
  }
}

/** Start the daemon as a child process (`blueprint-operator run --config FILE`) so a test can SIGKILL it. */
export function startChild(stack: Stack): { child: ChildProcess; output(): string; exited: Promise<number | null> } {
  const file = join(stack.dataDir, 'operator.toml')
  writeFileSync(file, stringify(stack.doc), { mode: 0o600 })
  let out = ''
  const child = spawn(process.execPath, [binPath, 'run', '--config', file], {
    env: { ...process.env, BPO_TEST_OPERATOR_KEY: stack.operatorKey, LOG_LEVEL: 'debug' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  child.stdout!.on('data', (d) => (out += d))
  child.stderr!.on('data', (d) => (out += d))
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)))
  return { child, output: () => out, exited }
}
