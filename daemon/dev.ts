/**
 * `npm run dev`: the embedded default. A local anvil chain with the contracts, the demo blueprint's artifact served
 * with its sha256, the blueprint registered, a demo customer's request paid into escrow, and the daemon running it
 * on the local provisioner. Runs until Ctrl-C, then shuts everything down and removes what it started.
 */
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createCommon } from '../core/common.js'
import { formatBaseUnits } from '../core/money.js'
import { sleep } from '../core/retry.js'
import { parseConfig } from './config.js'
import { startDevChain } from '../chain/evm/devchain.js'
import { createLocalProvisioner } from '../provisioners/local/createLocalProvisioner.js'
import { startArtifactServer } from './dev/artifact-server.js'
import { prettyDestination } from './dev/prettyLog.js'
import { startDaemon } from './daemon.js'
import { SHARED_UID_KEY } from './isolation.js'

type Io = { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream }

/** What the demo commands need to act on the dev chain (no keys: they derive anvil's public dev accounts). */
export type DevInfo = { rpcUrl: string; chainId: number; token: string; registry: string; escrow: string; operator: string; http?: string; blueprintId: string }

export const devDir = () => resolve(process.env.BPO_DEV_DIR ?? '.dev')

/** Whether 127.0.0.1:`port` can be listened on (the dashboard falls back to a free port when 9464 is taken). */
function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer()
    srv.once('error', () => resolve(false))
    srv.listen({ port, host: '127.0.0.1', exclusive: true }, () => srv.close(() => resolve(true)))
  })
}

const DEMO_PRICES = [1_000_000n, 3_000_000n, 6_000_000n] // USDC base units per hour: basic, standard, premium

export async function runDev(argv: string[], io: Io): Promise<number> {
  const { common, shutdown } = createCommon({ level: process.env.LOG_LEVEL ?? 'info', destination: prettyDestination(io.stdout) })
  const log = common.logger.child({ module: 'dev' })
  const dir = devDir()
  const stateDir = join(dir, 'state')
  const loopMs = Number(process.env.BPO_DEV_LOOP_MS ?? 5000)
  const operatorId = 'dev'

  // a previous run's processes belong to a chain that is gone: remove them first
  if (existsSync(join(stateDir, 'local'))) {
    const leftovers = createLocalProvisioner(common.child('local'), { rootDir: join(stateDir, 'local'), operatorId })
    for (const o of await leftovers.listOwned()) await leftovers.destroy(o.deploymentId)
    await leftovers.close()
  }
  rmSync(dir, { recursive: true, force: true })
  mkdirSync(dir, { recursive: true })

  log.info('starting a local chain (anvil) and deploying the contracts')
  const chain = await startDevChain(common.child('chain'), { blockTime: 1 })
  const artifactFile = fileURLToPath(new URL('./dev/demo-service.mjs', import.meta.url))
  const artifacts = await startArtifactServer(common.child('artifacts'), { files: { 'demo-service': (await import('node:fs')).readFileSync(artifactFile) } })
  const cleanups: Array<[string, () => Promise<void>]> = [
    ['anvil', () => chain.stop()],
    ['artifact server', () => artifacts.stop()],
  ]

  const { blueprintId } = await chain.developer.registerBlueprint({
    name: 'demo-http-service',
    sources: [{ kind: 'native', url: artifacts.urlOf('demo-service'), sha256: artifacts.sha256('demo-service') }],
    requirements: { vcpuMilli: 250, memoryMiB: 128, storageGiB: 0, ports: [8080] },
    pricePerHour: DEMO_PRICES,
  })
  log.info({ blueprintId: blueprintId.toString(), url: artifacts.urlOf('demo-service'), sha256: artifacts.sha256('demo-service') }, 'demo blueprint registered')

  const operatorKey = chain.anvil.accounts[1]!.privateKey
  const doc = {
    operator: { id: operatorId, data_dir: stateDir },
    chain: {
      rpc_url: chain.rpcUrl,
      chain_id: chain.chainId,
      private_key: 'env:BPO_DEV_OPERATOR_KEY',
      registry: chain.addresses.registry,
      escrow: chain.addresses.escrow,
      confirmations: 1,
      poll_interval_ms: 500,
      start_block: Number(chain.addresses.deployBlock),
    },
    loop: { interval_ms: loopMs },
    deploy: { health_timeout_ms: 20_000, backoff_ms: 1000 },
    http: { listen: process.env.BPO_DEV_HTTP ?? ((await portFree(9464)) ? '127.0.0.1:9464' : '127.0.0.1:0') },
    log: { level: process.env.LOG_LEVEL ?? 'info' },
    // the dev artifact server listens on 127.0.0.1, which artifact downloads may reach only when allowed
    // dev runs the demo as your own uid (no root, no uid range): the demo's processes could read this daemon's
    // environment and files, which hold only anvil's public development key here. `run` refuses this without opting in.
    providers: { artifact_allow_hosts: ['127.0.0.1'], local: { enabled: true, vcpu: 2, memory_gib: 4, storage_gib: 20, hourly_usd: '0.01', unsafe_workloads_share_daemon_uid: true } },
  }
  // anvil's account 1 is a public, well-known development key: handed over by reference like any secret
  const config = parseConfig(doc, { env: { BPO_DEV_OPERATOR_KEY: operatorKey } })
  log.warn(`${SHARED_UID_KEY} = true: the demo's replicas run as your own uid and could read this daemon's environment and files (dev only)`)
  const daemon = await startDaemon({ config, common })
  cleanups.push(['daemon', () => daemon.stop()])

  const info: DevInfo = {
    rpcUrl: chain.rpcUrl,
    chainId: chain.chainId,
    token: chain.addresses.token,
    registry: chain.addresses.registry,
    escrow: chain.addresses.escrow,
    operator: daemon.operator,
    ...(daemon.http && { http: daemon.http.url }),
    blueprintId: blueprintId.toString(),
  }
  writeFileSync(join(dir, 'dev.json'), JSON.stringify(info, null, 1))

  // the demo customer: 100 USDC, and a request whose deposit pays two minutes of the basic tier
  await chain.customer.mint(100_000_000n)
  const deposit = (DEMO_PRICES[0]! * 120n) / 3600n
  const requestedAt = performance.now()
  const { serviceId } = await chain.customer.requestService({ blueprintId, operator: daemon.operator, tier: 0, preferences: {}, ttlSeconds: 3600n, deposit })
  log.info({ serviceId: serviceId.toString(), deposit: `${formatBaseUnits(deposit, 6)} USDC`, paysFor: '2 minutes', ttl: '1 hour' }, 'demo customer requested a service')

  // report when the service first answers HTTP: the figure the README quotes
  void (async () => {
    const id = serviceId.toString()
    while (!common.signal.aborted) {
      const s = daemon.store.read().services[id]
      const ep = s?.state === 'active' ? s.endpoints[0] : undefined
      if (ep) {
        try {
          const r = await fetch(ep, { signal: AbortSignal.timeout(1000) })
          if (r.ok) {
            log.info({ serviceId: id, endpoint: ep, ms: Math.round(performance.now() - requestedAt) }, 'demo service answers HTTP (time since the request was sent)')
            io.stdout.write(
              `\n  warning:    dev only — replicas run as your own uid and could read this daemon's environment and files\n              (${SHARED_UID_KEY} = true; run refuses it unless you set it, see README: isolation)\n  dashboard:  ${daemon.http?.url ?? '(http disabled)'}/\n  service:    ${ep}\n  top up:     npm run demo -- top-up ${id} 0.05\n  tier:       npm run demo -- tier ${id} standard\n  terminate:  npm run demo -- terminate ${id}\n  Ctrl-C stops everything.\n\n`,
            )
            return
          }
        } catch {
          // not up yet
        }
      }
      await sleep(200, common.signal).catch(() => undefined)
    }
  })()

  return new Promise<number>((resolveExit) => {
    let signals = 0
    const stop = async () => {
      if (++signals > 1) process.exit(130)
      log.info('stopping: daemon, demo processes, artifact server, anvil')
      const [, daemonStop] = cleanups.pop()!
      await daemonStop()
      const local = createLocalProvisioner(common.child('local'), { rootDir: join(stateDir, 'local'), operatorId })
      for (const o of await local.listOwned()) await local.destroy(o.deploymentId)
      await local.close()
      for (const [name, fn] of cleanups.reverse()) {
        try {
          await fn()
        } catch (err) {
          log.warn({ err, part: name }, 'stop failed')
        }
      }
      await shutdown(5000)
      resolveExit(0)
    }
    process.on('SIGINT', () => void stop())
    process.on('SIGTERM', () => void stop())
  })
}
