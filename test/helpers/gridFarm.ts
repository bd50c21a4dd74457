/**
 * A ThreeFold farm whose VMs this machine can reach, for tests that boot grid VMs with the fake Zero-OS node
 * (test/fakes/zos-node.cjs): a TFChain runtime under chopsticks with the grid of setupGrid, its farm's public IPv4
 * addresses in a private /24 of this test process, the farm's gateway address on this machine's loopback (the VMs'
 * default route), an artifact server on the gateway address (what a VM's entrypoint downloads), the fake grid proxy,
 * and the operator's twin for a fresh mnemonic. Root only (network namespaces, addresses).
 */
import { execFileSync } from 'node:child_process'
import { get } from 'node:http'
import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { mnemonicGenerate } from '@polkadot/util-crypto'
import { createTestCommon, type Common } from '../../core/common.js'
import { usd } from '../../core/money.js'
import { startArtifactServer, type ArtifactServer } from '../../daemon/dev/artifact-server.js'
import { createGridSupervisor } from '../../provisioners/threefold/createGridSupervisor.js'
import { createThreefoldProvisioner } from '../../provisioners/threefold/createThreefoldProvisioner.js'
import { startGridProxy, type FakeGridProxy } from '../fakes/grid-proxy.js'
import { tfchainSpec61 } from '../pricing/chopsticks.js'
import { demoServicePath } from './stack.js'
import { createTwinFor, setupGrid, startTfchainDev, type TfchainDev } from './tfchain.js'

/** The protocol worker whose deployments boot as local VMs (node contracts real on chopsticks). */
export const zosWorkerPath = fileURLToPath(new URL('../fakes/grid-worker-zos.cjs', import.meta.url))
/** polkadot.js types of the spec 61 runtime (its metadata v12 has none), as a file for `tfchain_types`. */
export const tfchainSpec61TypesFile = tfchainSpec61.replace(/\.json$/, '-types.json')

export const canBootGridVms = process.getuid?.() === 0

export type GridFarm = {
  dev: TfchainDev
  proxy: FakeGridProxy
  /** Serves `demo-service` on the farm's gateway address. */
  artifacts: ArtifactServer
  gateway: string
  /** The farm's public IPv4 addresses (without prefix). */
  ips: string[]
  nodeId: number
  mnemonic: string
  twinId: number
  /** Another operator's twin, and its mnemonic. */
  otherTwinId: number
  otherMnemonic: string
  /** The node contracts (id → state: "created", "deleted"...) of `twinId` on chain now. */
  contractsOf(twinId: number): Promise<Map<string, string>>
  /** Farm public IPs held by a contract: ip → contract id. */
  reservedIps(): Promise<Map<string, string>>
  stop(): Promise<void>
}

/**
 * Claim one of the 10.247.<n>.0/24 blocks for this farm (a lock file per block, created exclusively; a lock whose
 * process is gone is taken over), so farms of test files running side by side never share addresses.
 */
function claimBlock(): { n: number; release(): void } {
  for (let i = 0; i < 250; i++) {
    const n = ((process.pid + i) % 250) + 1
    const lock = join(tmpdir(), `bpo-gridfarm-10.247.${n}.lock`)
    try {
      writeFileSync(lock, String(process.pid), { flag: 'wx' })
    } catch {
      const owner = Number(readFileSync(lock, 'utf8').trim() || 0)
      if (owner && isAlive(owner)) continue
      writeFileSync(lock, String(process.pid))
    }
    return { n, release: () => rmSync(lock, { force: true }) }
  }
  throw new Error('no free 10.247.<n>.0/24 block for a grid farm')
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

const text = (hex: string) => Buffer.from(hex.replace(/^0x/, ''), 'hex').toString('utf8')

export async function startGridFarm(): Promise<GridFarm> {
  // a /24 of its own per farm, away from fake-vm.ts's 10.100-199 blocks
  const block = claimBlock()
  const net = `10.247.${block.n}`
  const gateway = `${net}.1`
  const ips = Array.from({ length: 12 }, (_, i) => `${net}.${10 + i}`)
  const delGateway = () => {
    try {
      execFileSync('ip', ['addr', 'del', `${gateway}/32`, 'dev', 'lo'], { stdio: 'ignore' })
    } catch {
      // already gone
    }
    block.release()
  }
  execFileSync('ip', ['addr', 'replace', `${gateway}/32`, 'dev', 'lo'])
  const { common } = createTestCommon()
  const started: Array<() => Promise<void>> = []
  let dev: TfchainDev, nodeId: number, mnemonic: string, twinId: number, otherTwinId: number, otherMnemonic: string, proxy: FakeGridProxy, artifacts: ArtifactServer
  try {
    dev = await startTfchainDev()
    started.push(() => dev.stop())
    ;({ nodeId } = await setupGrid(dev, { farmIps: ips.map((ip) => ({ ip: `${ip}/24`, gateway })) }))
    mnemonic = mnemonicGenerate()
    twinId = await createTwinFor(dev, mnemonic)
    otherMnemonic = mnemonicGenerate()
    otherTwinId = await createTwinFor(dev, otherMnemonic)
    proxy = await startGridProxy({ [nodeId]: { used_resources: { cru: 0, sru: 0, hru: 0, mru: 0 } } })
    started.push(() => proxy.close())
    artifacts = await startArtifactServer(common, { files: { 'demo-service': readFileSync(demoServicePath) }, host: gateway })
  } catch (err) {
    for (const stop of started.reverse()) await stop().catch(() => undefined)
    delGateway()
    throw err
  }
  return {
    dev,
    proxy,
    artifacts,
    gateway,
    ips,
    nodeId,
    mnemonic,
    twinId,
    otherTwinId,
    otherMnemonic,
    async contractsOf(twin) {
      const out = new Map<string, string>()
      for (const [, v] of await dev.api.query.smartContractModule!.contracts!.entries()) {
        const c = v.toJSON() as { contract_id: number; twin_id: number; state: Record<string, unknown> } | null
        if (c && c.twin_id === twin) out.set(String(c.contract_id), Object.keys(c.state)[0]!)
      }
      return out
    },
    async reservedIps() {
      const farm = (await dev.api.query.tfgridModule!.farms!(1)).toJSON() as { public_ips: Array<{ ip: string; contract_id: number }> }
      return new Map(farm.public_ips.filter((p) => p.contract_id !== 0).map((p) => [text(p.ip).split('/')[0]!, String(p.contract_id)]))
    },
    async stop() {
      await artifacts.stop()
      await proxy.close()
      await dev.stop()
      delGateway()
    },
  }
}

/**
 * GET `url` on a connection of its own (no keep-alive pool): a grid VM's public IP moves to a new VM when a contract
 * is cancelled and another created, and a pooled connection to the old one would reach the new VM mid-stream.
 * Resolves undefined when nothing answers within `timeoutMs`.
 */
export function freshGet(url: string, timeoutMs = 5_000): Promise<{ status: number; body: string } | undefined> {
  return new Promise((resolve) => {
    const req = get(url, { agent: false, timeout: timeoutMs }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => (body += d))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
      res.on('error', () => resolve(undefined))
    })
    req.on('timeout', () => req.destroy())
    req.on('error', () => resolve(undefined))
  })
}

/** Whether the demo service answers at `endpoint` (GET /healthz 200, on a fresh connection). */
export const demoAnswers = async (endpoint: string) => (await freshGet(`${endpoint}/healthz`))?.status === 200

/** The demo service's GET / (its identity and counters), on a fresh connection. */
export async function demoHello(endpoint: string): Promise<Record<string, unknown>> {
  const r = await freshGet(`${endpoint}/`)
  if (r?.status !== 200) throw new Error(`GET ${endpoint}/: ${r ? `HTTP ${r.status}` : 'no answer'}`)
  return JSON.parse(r.body) as Record<string, unknown>
}

/**
 * The grid target over `farm`, the way the threefold suites build it: the fake Zero-OS worker, the farm's node as the
 * one catalog offer, 0.02 USD/TFT. `as` picks the twin (default the operator's); `substrateUrl` may point elsewhere.
 */
export function farmProvisioner(
  common: Common,
  farm: GridFarm,
  o: { stateDir: string; bootTimeoutMs: number; as?: { mnemonic: string; twinId: number }; substrateUrl?: string },
): ReturnType<typeof createThreefoldProvisioner> {
  const { mnemonic, twinId } = o.as ?? farm
  const substrateUrl = o.substrateUrl ?? farm.dev.chain.wsUrl
  return createThreefoldProvisioner(common, {
    supervisor: createGridSupervisor(common, { workerPath: zosWorkerPath, init: async () => ({ mnemonic, twinId, network: 'dev', substrateUrl, relayUrl: 'ws://127.0.0.1:9', proxyUrl: farm.proxy.url }), callTimeoutMs: 30_000, startTimeoutMs: 20_000 }),
    proxyUrl: farm.proxy.url,
    catalogOffers: () => [{ provider: 'threefold', source: 's', fetchedAt: 0, region: 'BE', instanceType: `node-${farm.nodeId}/1c-1g`, vcpu: 1, memoryGiB: 1, gpu: { count: 0 }, includedStorageGiB: 0, hourlyUsd: usd('0.01') }],
    tftUsd: async () => '0.02',
    minRunwayHours: 72,
    tftBuffer: '0.02',
    farms: [],
    nodeCooldownMs: 60_000,
    runnerFlist: 'https://hub.grid.tf/tf-official-apps/base:latest.flist',
    stateDir: o.stateDir,
    bootTimeoutMs: o.bootTimeoutMs,
  })
}
