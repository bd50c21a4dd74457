/**
 * The composition root: wires config, store, chain follower, escrow client, targets, the service manager, the orphan
 * sweep, the TFChain watcher of the grid's twin (when `[providers.threefold]` is enabled) and HTTP. Starts in order and closes in reverse; a part that fails to start unwinds the ones before it.
 */
import { setMaxListeners } from 'node:events'
import { join } from 'node:path'
import type { Common } from '../core/common.js'
import { BaseError } from '../core/errors.js'
import { faultPoint } from '../core/faults.js'
import { redactUrl } from '../core/redact.js'
import type { OperatorConfig } from './config.js'
import { createEvmPublicClient, createEvmWalletClient } from '../chain/evm/clients.js'
import { createEscrowClient } from '../chain/evm/escrow.js'
import { createEvmFollower } from '../chain/evm/follow.js'
import { archiveTerminal } from './archive.js'
import { accessSync, constants as fsConstants } from 'node:fs'
import { eventId } from '../chain/events.js'
import { createActions, type Actions } from './actions.js'
import { createEventBus, watchStages, type EventBus } from './events.js'
import { startHttpServer, type HttpServer } from './http/index.js'
import { instrumentTargets, registerMoneyGauges, type ObservedTargets } from './observe.js'
import { startWebhooks } from './webhooks/webhooks.js'
import { startCatalog } from './pricing.js'
import { applyEvents, createCursorWriter, deliveriesInFlight, pruneProcessed } from './intake.js'
import { createServiceManager, type ServiceManager } from './services.js'
import { createStore, type Store } from './store.js'
import { createOrphanSweep } from './sweep.js'
import { createTargets } from './targets.js'
import { tfchainCheck, tfchainFollowFromConfig } from './tfchainFollow.js'
import { createPlacement, untilText } from './placement/placement.js'

export type Daemon = {
  store: Store
  manager: ServiceManager
  targets: ObservedTargets
  /** Stage changes and ticks, for observers (SSE, webhooks). */
  bus: EventBus
  actions: Actions
  http?: HttpServer
  /** Operator address (lowercase). */
  operator: `0x${string}`
  /** The last block delivered by the chain follower (persisted with every event, and at least every 30 s). */
  cursor(): { blockNumber: string; blockHash: string } | undefined
  /** Stop everything in reverse order of start-up. */
  stop(): Promise<void>
}

export type StartDaemonParameters = {
  config: OperatorConfig
  common: Common
  /** The grid worker the threefold target forks instead of the shipped one (tests: a fake that speaks its protocol). */
  gridWorkerPath?: string
}

export class StartupError extends BaseError {
  override name = 'StartupError'
  constructor(part: string, cause: unknown) {
    super(`could not start ${part}`, { code: 'STARTUP_FAILED', retryable: false, cause })
  }
}

export async function startDaemon({ config, common: parent, gridWorkerPath }: StartDaemonParameters): Promise<Daemon> {
  // the daemon's own stop signal: stop() aborts the work in flight first, then closes the parts in reverse order
  const stopping = new AbortController()
  const signal = AbortSignal.any([parent.signal, stopping.signal])
  setMaxListeners(0, signal)
  const scoped = (c: Common): Common => ({ ...c, signal, child: (m) => scoped(c.child(m)) })
  const common = scoped(parent)
  const log = common.logger
  const closers: Array<[string, () => Promise<void> | void]> = []
  const unwind = async () => {
    for (const [name, close] of closers.reverse()) {
      try {
        await close()
      } catch (err) {
        log.warn({ err, part: name }, 'close failed')
      }
    }
  }
  const step = async <T>(part: string, fn: () => Promise<T> | T): Promise<T> => {
    try {
      return await fn()
    } catch (err) {
      await unwind()
      throw err instanceof BaseError ? err : new StartupError(part, err)
    }
  }

  const clientParams = { rpcUrl: config.chain.rpcUrl, chainId: config.chain.chainId, requestTimeoutMs: config.chain.requestTimeoutMs, pollingIntervalMs: Math.min(1000, config.chain.pollIntervalMs) }
  const publicClient = createEvmPublicClient({ ...clientParams, batchSize: config.chain.rpcBatchSize, metrics: common.metrics })
  const walletClient = createEvmWalletClient({ ...clientParams, privateKey: config.chain.privateKey.reveal() as `0x${string}`, metrics: common.metrics })
  const account = walletClient.account
  const operator = account.address.toLowerCase() as `0x${string}`
  log.info({ operator, operatorId: config.operator.id, chainId: config.chain.chainId, rpc: redactUrl(config.chain.rpcUrl) }, 'starting')

  const bus = createEventBus(log.child({ module: 'events' }))
  const store = watchStages(
    await step('state store', () =>
      createStore(common.child('store'), {
        operatorId: config.operator.id,
        chainId: config.chain.chainId,
        file: join(config.operator.dataDir, 'state.sqlite'),
        ...(config.store.url && { url: config.store.url }),
        // the state file of earlier versions is imported once into an empty database, then kept as a backup
        importFrom: join(config.operator.dataDir, 'state.json'),
        leaseMs: config.store.leaseMs,
        sqliteSynchronous: config.store.sqliteSynchronous,
      }),
    ),
    bus,
  )
  closers.push(['store', () => store.close()])

  // prices first: clouds sell from the catalog's offers
  const catalog = await step('pricing catalog', () => startCatalog(common.child('pricing'), config))
  if (catalog) closers.push(['pricing catalog', () => catalog.close()])

  const targets = instrumentTargets(common, await step('targets', () => createTargets(common.child('targets'), config, { catalogOffers: () => catalog?.offers() ?? [], ...(gridWorkerPath && { gridWorkerPath }) })))
  closers.push(['targets', () => targets.close()])
  const placement = createPlacement(common.child('placement'), { settings: config.placement, targets })

  if (config.notifications.webhooks.length) {
    const hooks = await step('webhooks', () =>
      startWebhooks(common.child('webhooks'), { hooks: config.notifications.webhooks, dataDir: config.operator.dataDir, bus, operatorId: config.operator.id, chainId: config.chain.chainId }),
    )
    closers.push(['webhooks', () => hooks.close()])
  }

  const escrow = createEscrowClient(common.child('escrow'), {
    publicClient,
    walletClient,
    // daemons sharing one PostgreSQL send from one account: one transaction at a time among them (one nonce)
    ...(store.coordination && { exclusive: store.coordination.exclusiveTx }),
    escrow: config.chain.escrow,
    registry: config.chain.registry,
  })

  // chain time for the loop: one latest-block read shared by every service of a tick (not one read per service)
  let lastBlockTime = 0n
  let blockRead: { at: number; done: Promise<void> } | undefined
  const now = async () => {
    if (!blockRead || Date.now() - blockRead.at > 1000) {
      blockRead = {
        at: Date.now(),
        done: publicClient.getBlock({ blockTag: 'latest' }).then(
          (b) => void (lastBlockTime = b.timestamp),
          (err) => log.debug({ err: (err as Error).message }, 'latest block unavailable; using the last known chain time'),
        ),
      }
    }
    await blockRead.done
    const wall = BigInt(Math.floor(Date.now() / 1000))
    return lastBlockTime > wall ? lastBlockTime : wall
  }

  // several daemons on one PostgreSQL: the leader follows the chain; each acts only on the services it leases
  const coord = store.coordination
  const leading = () => coord?.isLeader() ?? true
  const chainNow = () => {
    const wall = BigInt(Math.floor(Date.now() / 1000))
    return lastBlockTime > wall ? lastBlockTime : wall
  }
  registerMoneyGauges(common, { store, token: config.token, now: chainNow })
  const tickSeconds = common.metrics.histogram('bpo_tick_seconds', 'Duration of a whole reconcile pass (until every service of the pass settled), seconds')
  let manager: ServiceManager | undefined
  const actions = createActions(common.child('actions'), {
    store,
    targets,
    kick: (id) => manager?.kick(id),
    dataDir: config.operator.dataDir,
    configDraining: config.operator.draining,
    timeoutMs: config.deploy.healthTimeoutMs + 30_000,
  })
  manager = createServiceManager(common.child('services'), {
    config,
    store,
    escrow,
    targets,
    placement,
    now,
    draining: () => actions.draining(),
    // read at tick time, once the follower below exists (the follower logs the mismatch itself)
    chainTrusted: () => !follower.chainIdMismatch(),
    ...(coord && { owns: coord.holds }),
    onTick: (seconds) => {
      tickSeconds.observe(seconds)
      bus.emit({ type: 'tick', at: new Date().toISOString(), seconds })
    },
  })
  const mgr = manager
  closers.push(['services', () => mgr.stop()])
  const applied = common.metrics.counter('bpo_events_applied_total', 'Chain events acted on (first time seen; duplicates are skipped), by type', { labels: ['type'] })

  let lastDelivery = Date.now()
  // the follower keeps its cursor in memory; an empty range is persisted at most every 30 s (a restart then re-reads
  // a few empty blocks), so an idle daemon does not rewrite its state file at every poll
  let delivered: { blockNumber: string; blockHash: string } | undefined
  let persistedAt = 0
  // deliveries overlap (deliveriesInFlight): every write of the cursor extends the one queued before it
  const cursorWriter = createCursorWriter(store)
  const persistCursor = async () => {
    if (!leading()) return
    const c = delivered
    const saved = store.read().cursor
    if (!c || (saved?.blockNumber === c.blockNumber && saved.blockHash === c.blockHash)) return
    await cursorWriter.write(c, (st) => void pruneProcessed(st, BigInt(c.blockNumber)))
    persistedAt = Date.now()
  }
  const makeFollower = () => createEvmFollower(common.child('follower'), {
    publicClient,
    chainId: config.chain.chainId,
    addresses: [config.chain.registry, config.chain.escrow],
    confirmations: config.chain.confirmations,
    pollIntervalMs: config.chain.pollIntervalMs,
    startBlock: config.chain.startBlock,
    maxBlockRange: config.chain.maxBlockRange,
    maxInFlight: deliveriesInFlight,
    loadCursor: async () => {
      const c = store.read().cursor
      return c ? { blockNumber: BigInt(c.blockNumber), blockHash: c.blockHash as `0x${string}` } : undefined
    },
    deliver: async (events, cursor) => {
      delivered = { blockNumber: cursor.blockNumber.toString(), blockHash: cursor.blockHash }
      lastDelivery = Date.now()
      if (!events.length) {
        if (Date.now() - persistedAt >= 30_000) await persistCursor()
        return
      }
      // events and the cursor past them are one write: each event is acted on exactly once across restarts
      const touched = await cursorWriter.write({ blockNumber: cursor.blockNumber.toString(), blockHash: cursor.blockHash }, (st) => {
        for (const e of events) if (!st.processed[eventId(e)]) applied.inc({ type: e.type })
        const t = applyEvents(st, events, { operator, chainId: config.chain.chainId, logger: log.child({ module: 'intake' }), token: config.token })
        pruneProcessed(st, cursor.blockNumber)
        return t
      })
      persistedAt = Date.now()
      faultPoint('intake.committed')
      for (const id of touched) mgr.kick(id)
    },
  })
  let follower = makeFollower()
  closers.push(['cursor', () => persistCursor()])
  closers.push(['follower', () => follower.stop()])

  // the grid: the twin's TFChain events (bills into the ledger; a lost deployment is destroyed and placed again)
  const tfchain = await step('tfchain watcher', () => tfchainFollowFromConfig(common.child('tfchain'), config, { store, kick: (id) => mgr.kick(id) }))
  if (tfchain) closers.push(['tfchain watcher', () => tfchain.stop()])

  const sweep = createOrphanSweep(common.child('sweep'), {
    store,
    targets,
    intervalMs: Math.max(config.loop.intervalMs * 10, 60_000),
    deploymentPrefix: `bp-${config.chain.chainId}-`,
    // caught up: the cursor is within a few blocks of what the follower may deliver
    ready: async () => {
      const c = delivered
      if (!c || !leading()) return false
      const head = await publicClient.getBlockNumber()
      return BigInt(c.blockNumber) + BigInt(config.chain.confirmations) + 5n >= head
    },
  })
  closers.push(['sweep', () => sweep.stop()])

  // retention: hourly, terminal services older than archive_after_days leave the state file for the archive
  const archiveTimer = setInterval(() => {
    if (!leading()) return
    void archiveTerminal(common.child('archive'), {
      store,
      file: join(config.operator.dataDir, 'archive.jsonl'),
      retainMs: config.operator.archiveAfterDays * 86_400_000,
    }).catch((err) => log.warn({ err }, 'archiving failed; will retry'))
  }, 3_600_000)
  archiveTimer.unref()
  closers.push(['archive', () => clearInterval(archiveTimer)])

  const headGauge = common.metrics.gauge('chain_head_block', 'Latest block number reported by the RPC node', { labels: ['chain_id'] })
  const chainFacts = () => {
    const c = delivered ?? store.read().cursor
    const head = headGauge.get({ chain_id: config.chain.chainId })
    return {
      chainId: config.chain.chainId,
      ...(head > 0 && { head: String(head) }),
      ...(c && { cursor: c.blockNumber, cursorHash: c.blockHash }),
      ...(head > 0 && c && { lag: Math.max(0, head - Number(c.blockNumber)) }),
      lastDeliveryAt: new Date(lastDelivery).toISOString(),
    }
  }
  const checks = async () => {
    // not ready until the chain was read once: a daemon started with its RPC down waits (and says so here)
    const stale = delivered === undefined || Date.now() - lastDelivery > Math.max(config.chain.pollIntervalMs * 20, 60_000)
    let writable = true
    try {
      accessSync(config.operator.dataDir, fsConstants.W_OK)
    } catch {
      writable = false
    }
    const health = catalog?.health() ?? []
    const empty = health.filter((h) => h.source !== 'own-inventory' && !h.offers)
    return [
      // a daemon that does not lead (several on one PostgreSQL) follows no chain: fine while another leads
      coord && !coord.isLeader()
        ? { name: 'chain-follower', ok: true, critical: true, detail: `another daemon leads; this one (${coord.owner}) serves the services it leases` }
        : { name: 'chain-follower', ok: !stale, critical: true, detail: delivered === undefined ? 'the chain has not been read yet (is the RPC reachable?)' : stale ? `no block range delivered since ${new Date(lastDelivery).toISOString()}` : `last delivery ${new Date(lastDelivery).toISOString()}` },
      { name: 'state-store', ok: writable, critical: true, detail: writable ? `${config.operator.dataDir} is writable` : `${config.operator.dataDir} is not writable` },
      { name: 'targets', ok: targets.list().length > 0, critical: true, detail: `${targets.list().length} target(s): ${targets.list().map((t) => t.name).join(', ') || 'none configured'}` },
      { name: 'price-sources', ok: !empty.length, critical: false, detail: empty.length ? `no offers yet from ${empty.map((h) => h.source).join(', ')}` : `${health.length} source(s) serving` },
      { name: 'accepting-requests', ok: !actions.draining(), critical: false, detail: actions.draining() ? 'draining: new requests are refused' : 'new requests are taken' },
      ...(tfchain ? [tfchainCheck({ leading: leading(), lastDeliveryAt: tfchain.lastDeliveryAt(), now: Date.now() })] : []),
    ]
  }

  let httpServer: HttpServer | undefined
  if (config.http.enabled) {
    httpServer = await step('http', () =>
      startHttpServer({
        host: config.http.host,
        port: config.http.port,
        common: common.child('http'),
        config,
        store,
        targets,
        catalog,
        bus,
        actions,
        adminToken: config.http.adminToken,
        operator,
        chain: chainFacts,
        now: chainNow,
        checks,
        extra: () => ({
          placement: { mode: config.placement.mode, blocked: placement.blocks().map((b) => ({ ...b, until: untilText(b.until) })) },
          catalog: catalog?.health() ?? [],
        }),
        usedOn: (name) => mgr.context.book.usedOn(name),
      }),
    )
    closers.push(['http', () => httpServer!.close()])
  }

  // resume every service from its last recorded state, then follow the chain
  mgr.start()
  if (!coord) {
    follower.start()
    tfchain?.start()
  } else {
    // leadership moves between daemons: the new leader follows from the persisted cursor (reloaded on election)
    let handover = Promise.resolve()
    coord.onLeadership((lead) => {
      handover = handover.then(async () => {
        await follower.stop()
        await tfchain?.stop()
        if (!lead || stopping.signal.aborted) return
        // a fresh follower: it starts from the cursor the previous leader persisted
        cursorWriter.reset()
        delivered = undefined
        follower = makeFollower()
        follower.start()
        tfchain?.start()
      })
    })
    if (coord.isLeader()) {
      follower.start()
      tfchain?.start()
    }
    // services adopted from a daemon that stopped renewing: resume them now, not at the next tick
    coord.onAcquired((ids) => {
      for (const id of ids) mgr.kick(id)
    })
  }
  sweep.start()
  log.info({ http: httpServer?.url, targets: targets.list().map((t) => t.name), ...(tfchain && { tfchainTwin: config.providers.threefold?.twinId }) }, 'started')

  let stopped: Promise<void> | undefined
  return {
    store,
    manager: mgr,
    targets,
    bus,
    actions,
    ...(httpServer && { http: httpServer }),
    operator,
    cursor: () => delivered ?? store.read().cursor,
    stop: () =>
      (stopped ??= (async () => {
        log.info('stopping: work in flight is aborted and resumes at the next start')
        stopping.abort(new Error('daemon stopping'))
        await unwind()
        log.info('stopped')
      })()),
  }
}
