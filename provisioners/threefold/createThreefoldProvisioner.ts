/**
 * The ThreeFold Grid as a target: one Zero-OS VM per replica, deployed by the grid worker child (grid_client), named
 * `<deploymentId>-r<i>` so `listOwned` finds the twin's contracts by name. Before deploying: node choice among the
 * catalog's offers (chooseNode) and the TFT runway check (checkRunway). A node whose deployment fails with a
 * capacity error is skipped for `nodeCooldownMs` and the next node is tried.
 *
 * scale(0) cancels the VM contracts: on the grid a VM's disks (zmount) live in its node contract, so **the data is
 * lost** at scale 0 (the grid keeps nothing without a contract that pays for it); scaling up again deploys fresh VMs.
 * destroy cancels every contract of the deployment (node contracts, which hold the public IPs, and any name contract).
 * Every contract is recorded as the daemon's own cancellation before it is cancelled (ownCancels.ts), so the TFChain
 * intake does not take it for a lost deployment.
 *
 * A VM with a public IP is ready once its first port accepts TCP: provision waits for it (`bootTimeoutMs`, UNHEALTHY
 * after that, and what the attempt created is cancelled), and status probes it.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { join } from 'node:path'
import type { Decimal } from 'decimal.js'
import type { Common } from '../../core/common.js'
import { AbortedError, BaseError } from '../../core/errors.js'
import { Usd } from '../../core/money.js'
import type { Offer } from '../../core/offer.js'
import { sleep, withTimeout } from '../../core/retry.js'
import { assertEnvAllowed } from '../envPolicy.js'
import { failoverOf } from '../../daemon/placement/failover.js'
import { parseGridFarmList, type GridFarm } from '../../pricing/sources/threefold.js'
import { ProvisionError, TargetUnreachableError } from '../errors.js'
import type { CallOptions, DeploymentRequest, DeploymentStatus, OwnedResource, Provisioner, SourceKind } from '../types.js'
import { checkRunway } from './checkRunway.js'
import { chooseNode, nodeIdOfOffer, type GridProxyNode } from './chooseNode.js'
import type { GridSupervisor } from './createGridSupervisor.js'
import { recordOwnCancels } from './ownCancels.js'
import type { GridContract, GridVmSpec } from './protocol.js'

export type ThreefoldProvisionerParameters = {
  /** The supervised grid worker; closed with the provisioner. */
  supervisor: Pick<GridSupervisor, 'call' | 'close'>
  /** Grid proxy base URL (node and farm records). */
  proxyUrl: string
  /** The catalog's offers (the threefold ones are used). */
  catalogOffers(): readonly Offer[]
  /** USD per TFT now. */
  tftUsd(): Promise<Decimal.Value>
  minRunwayHours: number
  tftBuffer: Decimal.Value
  farms: readonly number[]
  nodeCooldownMs: number
  /** Flist of the VM that downloads, sha256-verifies and runs a native artifact. */
  runnerFlist: string
  /** Folder of the target's state file. */
  stateDir: string
  allowTestingSources?: boolean
  /** Candidates fetched from the grid proxy per provision. Default 8. */
  maxCandidates?: number
  /** Nodes tried per replica before giving up. Default 3. */
  maxNodeAttempts?: number
  /** Grid proxy request timeout, ms. Default 10 000. */
  proxyTimeoutMs?: number
  /** A new VM's first port must accept TCP connections within this long, ms. Default 600 000. */
  bootTimeoutMs?: number
  /** One TCP probe of a VM's port, ms. Default 3 000. */
  probeTimeoutMs?: number
  now?: () => number
}

type Replica = { name: string; nodeId: number; contracts: string[]; publicIp?: string }
type Entry = { request: DeploymentRequest; wanted: number; hourlyUsd: string; replicas: Replica[] }
type State = Record<string, Entry>

const replicaName = (deploymentId: string, i: number) => `${deploymentId}-r${i}`
/** The deployment id a grid deployment name belongs to (`<id>-r<n>`), or undefined. */
export const deploymentIdOfName = (name: string | undefined): string | undefined => (name ? /^(.+)-r\d+$/.exec(name)?.[1] : undefined)

export function createThreefoldProvisioner(common: Common, p: ThreefoldProvisionerParameters): Provisioner {
  const log = common.logger
  const now = p.now ?? Date.now
  const statePath = join(p.stateDir, 'deployments.json')
  const failedAt = new Map<number, number>()
  let state: State = {}
  try {
    state = JSON.parse(readFileSync(statePath, 'utf8')) as State
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new BaseError('the threefold state file is not valid JSON', { code: 'STATE_CORRUPT', cause: err, meta: { path: statePath } })
  }
  const save = () => {
    mkdirSync(p.stateDir, { recursive: true })
    writeFileSync(`${statePath}.tmp`, JSON.stringify(state), { mode: 0o600 })
    renameSync(`${statePath}.tmp`, statePath)
  }
  /** One operation per deployment at a time: a timed-out call's cleanup finishes before a retry starts. */
  const locks = new Map<string, Promise<unknown>>()
  const locked = <T>(id: string, fn: () => Promise<T>): Promise<T> => {
    const run = (locks.get(id) ?? Promise.resolve()).catch(() => {}).then(fn)
    locks.set(id, run.catch(() => {}))
    return run
  }
  /** The caller's signal and timeout around one call: ABORTED before any side effect, TIMEOUT (retryable) after `timeoutMs`. */
  const run = async <T>(what: string, o: CallOptions, fn: (signal: AbortSignal | undefined) => Promise<T>): Promise<T> => {
    if (o.signal?.aborted) throw new AbortedError(`threefold ${what}`, o.signal.reason)
    return o.timeoutMs !== undefined ? withTimeout(`threefold ${what}`, o.timeoutMs, (s) => fn(s), o.signal) : fn(o.signal)
  }
  const sig = (signal: AbortSignal | undefined) => (signal ? { signal } : {})
  const sourceKinds: SourceKind[] = p.allowTestingSources ? ['native', 'testing'] : ['native']

  const proxyGet = async <T>(path: string, signal?: AbortSignal): Promise<T> => {
    try {
      return await withTimeout(`grid proxy GET ${path}`, p.proxyTimeoutMs ?? 10_000, async (s) => {
        const res = await fetch(new URL(path, p.proxyUrl), { signal: s, headers: { accept: 'application/json' } })
        if (!res.ok) throw new Error(`HTTP ${res.status}`)
        return (await res.json()) as T
      }, signal)
    } catch (err) {
      throw new TargetUnreachableError('the ThreeFold grid proxy', err, [`GET ${path}`])
    }
  }

  const vmSpec = (req: DeploymentRequest, i: number, nodeId: number): GridVmSpec => {
    const src = req.source
    if (src.kind === 'container' || (src.kind === 'testing' && !p.allowTestingSources)) throw new ProvisionError(`the grid target cannot run ${src.kind} sources`, { code: 'PROVISION_FAILED', retryable: false })
    return {
      name: replicaName(req.deploymentId, i),
      nodeId,
      cpu: Math.max(1, Math.ceil(req.spec.vcpu)),
      memoryMb: Math.max(256, Math.ceil(req.spec.memoryGiB * 1024)),
      rootfsGb: 2,
      diskGb: Math.ceil(req.spec.storageGiB),
      flist: p.runnerFlist,
      // fixed script; the artifact's URL and digest arrive as environment values, never spliced into the command
      entrypoint: '/bin/sh -c \'wget -q -O /bp "$BP_URL" && echo "$BP_SHA256  /bp" | sha256sum -c - && chmod 0755 /bp && exec /bp\'',
      // what every target sets (provisioners/envPolicy.ts): the VM is the replica's host, so it listens on every address
      env: {
        ...(req.env ?? {}),
        BP_URL: src.url,
        BP_SHA256: src.sha256,
        PORT: String(req.spec.ports[0] ?? 8080),
        HOST: '0.0.0.0',
        SERVICE_ID: req.serviceId,
        BLUEPRINT_ID: req.blueprintId,
        DEPLOYMENT_ID: req.deploymentId,
        REPLICA_INDEX: String(i),
        ...(req.spec.storageGiB > 0 && { DATA_DIR: '/data' }),
      },
      publicIp: req.spec.ports.length > 0,
      networkName: `n${req.deploymentId.replace(/[^a-z0-9]/g, '').slice(-14)}`,
      deploymentId: req.deploymentId,
    }
  }

  /** Status from the state, with `live` (the twin's contract ids now on the grid) deciding which replicas are ready. */
  const statusOf = (id: string, live?: ReadonlySet<string>, answering?: ReadonlySet<string>): DeploymentStatus => {
    const e = state[id]
    if (e && live) {
      // replicas whose contracts are gone (cancelled by the grid, out of funds, or by another daemon) are forgotten
      const kept = e.replicas.filter((r) => r.contracts.every((c) => live.has(c)))
      if (kept.length !== e.replicas.length) {
        e.replicas = kept
        if (!kept.length && e.wanted > 0) delete state[id]
        save()
      }
    }
    if (!e || !state[id]) return { deploymentId: id, exists: false, replicasWanted: 0, replicasReady: 0, endpoints: [], healthy: true }
    const port = e.request.spec.ports[0]
    const ready = e.replicas.filter((r) => r.contracts.length > 0 && (!live || r.contracts.every((c) => live.has(c))) && (!answering || answering.has(r.name)))
    const silent = answering ? e.replicas.filter((r) => !answering.has(r.name)).map((r) => `${r.name} (${r.publicIp}:${port}) does not answer`) : []
    const endpoints = port ? ready.flatMap((r) => (r.publicIp ? [`http://${r.publicIp}:${port}`] : [])) : []
    return {
      deploymentId: id,
      exists: e.replicas.length > 0 || e.wanted === 0,
      replicasWanted: e.wanted,
      replicasReady: ready.length,
      endpoints,
      healthy: ready.length === e.wanted,
      placement: [...new Set(e.replicas.map((r) => `node-${r.nodeId}`))].join(','),
      ...(silent.length && { detail: silent.join('; ') }),
    }
  }

  /** Names of the replicas whose VM accepts TCP on the first port (all of them when the spec has no ports or no public IP). */
  const answering = async (id: string): Promise<Set<string>> => {
    const e = state[id]
    const port = e?.request.spec.ports[0]
    const out = new Set<string>()
    await Promise.all(
      (e?.replicas ?? []).map(async (r) => {
        if (!port || !r.publicIp || (await tcpAnswers(r.publicIp, port, p.probeTimeoutMs ?? 3_000))) out.add(r.name)
      }),
    )
    return out
  }

  /** Wait until a new VM answers on its first port (its flist is fetched and it boots); UNHEALTHY after bootTimeoutMs. */
  const waitBooted = async (req: DeploymentRequest, r: Replica, signal: AbortSignal | undefined) => {
    const port = req.spec.ports[0]
    if (!port || !r.publicIp) return
    const deadline = now() + (p.bootTimeoutMs ?? 600_000)
    while (!(await tcpAnswers(r.publicIp, port, p.probeTimeoutMs ?? 3_000))) {
      if (signal?.aborted) throw new AbortedError('threefold boot wait', signal.reason)
      if (now() > deadline) throw new ProvisionError(`grid VM ${r.name} did not answer on ${r.publicIp}:${port} within ${p.bootTimeoutMs ?? 600_000} ms`, { code: 'UNHEALTHY', reason: 'UNHEALTHY', retryable: true, meta: { nodeId: r.nodeId } })
      await sleep(1_000, signal).catch(() => {})
    }
    log.info({ name: r.name, nodeId: r.nodeId, address: `${r.publicIp}:${port}` }, 'grid VM answers')
  }

  /** Rank the nodes placement may use for this request (its own offer's node first when eligible). */
  const candidates = async (req: DeploymentRequest, signal?: AbortSignal) => {
    const offers = p.catalogOffers().filter((o) => o.provider === 'threefold' && (!req.offer || o.region === req.offer.region || !req.spec.regions.length))
    const ids = [...new Set(offers.toSorted((a, b) => a.hourlyUsd.cmp(b.hourlyUsd)).map(nodeIdOfOffer).filter((x): x is number => x !== undefined))]
    const wanted = req.offer ? nodeIdOfOffer({ instanceType: req.offer.instanceType }) : undefined
    const pick = [...(wanted !== undefined ? [wanted] : []), ...ids.filter((i) => i !== wanted)].slice(0, p.maxCandidates ?? 8)
    const nodes = new Map<number, GridProxyNode>()
    for (const id of pick) nodes.set(id, await proxyGet<GridProxyNode>(`/nodes/${id}`, signal))
    const farmFreeIpv4 = req.spec.ports.length ? parseGridFarmList(await proxyGet<GridFarm[]>('/farms?free_ips=1', signal)).freeIpv4 : undefined
    const r = chooseNode({ offers: offers.filter((o) => nodes.has(nodeIdOfOffer(o) ?? -1)), nodes, spec: req.spec, farms: p.farms, failedAt, cooldownMs: p.nodeCooldownMs, now: now(), ...(farmFreeIpv4 && { farmFreeIpv4 }) })
    const first = r.ranked.findIndex((c) => c.nodeId === wanted)
    if (first > 0) r.ranked.unshift(...r.ranked.splice(first, 1))
    return r
  }

  const deployReplica = async (req: DeploymentRequest, i: number, ranked: Awaited<ReturnType<typeof candidates>>['ranked'], o: CallOptions): Promise<Replica> => {
    const tries: string[] = []
    for (const c of ranked.filter((c) => !failedAt.has(c.nodeId) || now() - failedAt.get(c.nodeId)! >= p.nodeCooldownMs).slice(0, p.maxNodeAttempts ?? 3)) {
      try {
        const r = await p.supervisor.call('deployVm', vmSpec(req, i, c.nodeId), { ...(o.timeoutMs !== undefined && { timeoutMs: o.timeoutMs }), ...(o.signal && { signal: o.signal }) })
        return { name: replicaName(req.deploymentId, i), nodeId: c.nodeId, contracts: r.contracts.map((x) => x.contractId), ...(r.publicIp && { publicIp: r.publicIp }) }
      } catch (err) {
        const f = failoverOf(err)
        if (!f || f.kind !== 'capacity') throw err
        failedAt.set(c.nodeId, now())
        tries.push(`node ${c.nodeId}: ${(err as Error).message.split('\n')[0]}`)
        log.warn({ nodeId: c.nodeId, deploymentId: req.deploymentId }, 'grid node refused the deployment: trying the next node')
      }
    }
    throw new ProvisionError('no grid node could take the replica', { code: 'NO_CAPACITY', reason: 'NO_CAPACITY', retryable: false, details: tries, meta: { failover: { kind: 'capacity', scope: 'provider' } } })
  }

  /** Every contract of a replica's deployment is recorded as the daemon's own cancellation before it is cancelled. */
  const cancelReplica = async (r: Replica, o: CallOptions) => {
    const { contracts } = await p.supervisor.call('listContracts', {}, sig(o.signal))
    const ids = new Set([...r.contracts, ...contracts.filter((c) => (c.deploymentName ?? c.name) === r.name).map((c) => c.contractId)])
    recordOwnCancels(p.stateDir, deploymentIdOfName(r.name) ?? r.name, [...ids])
    await p.supervisor.call('deleteVm', { name: r.name }, { ...(o.signal && { signal: o.signal }) })
  }
  const liveContracts = async (signal: AbortSignal | undefined) => new Set((await p.supervisor.call('listContracts', {}, sig(signal))).contracts.map((c) => c.contractId))

  const deployUpTo = async (id: string, o: CallOptions) => {
    const e = state[id]!
    const req = e.request
    const { ranked, rejected } = await candidates(req, o.signal)
    if (!ranked.length) throw new ProvisionError('no grid node fits the spec', { code: 'NO_CAPACITY', reason: 'NO_CAPACITY', details: rejected.slice(0, 10).map((r) => `${r.instanceType}: ${r.why}`), meta: { failover: { kind: 'capacity', scope: 'provider' } } })
    const missing = e.wanted - e.replicas.length
    if (missing <= 0) return
    const running = Object.entries(state).filter(([k]) => k !== id).map(([, x]) => new Usd(x.hourlyUsd).mul(x.replicas.length))
    const balance = await p.supervisor.call('balance', {}, { ...(o.signal && { signal: o.signal }) })
    checkRunway({ freeTft: balance.freeTft, runningHourlyUsd: [...running, ranked[0]!.hourlyUsd.mul(e.replicas.length)], newHourlyUsd: ranked[0]!.hourlyUsd.mul(missing), usdPerTft: await p.tftUsd(), buffer: p.tftBuffer, minRunwayHours: p.minRunwayHours })
    e.hourlyUsd = ranked[0]!.hourlyUsd.toString()
    for (let i = 0; i < e.wanted; i++) {
      if (e.replicas.some((r) => r.name === replicaName(id, i))) continue
      const r = await deployReplica(req, i, ranked, o)
      e.replicas.push(r)
      save()
      await waitBooted(req, r, o.signal)
    }
  }

  return {
    id: 'threefold',
    sourceKinds,
    provision: (req, o = {}) =>
      run('provision', o, (signal) =>
        locked(req.deploymentId, async () => {
          assertEnvAllowed(req.env)
          const fresh = !state[req.deploymentId]
          if (fresh) {
            const { contracts } = await p.supervisor.call('listContracts', {}, sig(signal))
            state[req.deploymentId] = { request: req, wanted: req.spec.replicas, hourlyUsd: '0', replicas: [] }
            // adopt what a crashed daemon deployed under these names
            for (const [name, cs] of groupByName(contracts)) if (deploymentIdOfName(name) === req.deploymentId) state[req.deploymentId]!.replicas.push({ name, nodeId: cs[0]!.nodeId ?? 0, contracts: cs.map((c) => c.contractId) })
            save()
          }
          const before = new Set(state[req.deploymentId]!.replicas.map((r) => r.name))
          try {
            await deployUpTo(req.deploymentId, sig(signal))
          } catch (err) {
            // nothing half-made stays behind: every replica of this attempt is cancelled, then the error goes up
            const e = state[req.deploymentId]!
            const created = fresh ? e.replicas : e.replicas.filter((r) => !before.has(r.name))
            for (const r of created) await cancelReplica(r, {}).catch((e2: unknown) => log.error({ err: e2, name: r.name }, 'cancel after a failed provision failed'))
            if (fresh) delete state[req.deploymentId]
            else e.replicas = e.replicas.filter((r) => before.has(r.name))
            save()
            if (signal?.aborted) throw new AbortedError('threefold provision', signal.reason)
            throw err instanceof BaseError ? err : new ProvisionError('grid deployment failed', { cause: err, retryable: true })
          }
          return statusOf(req.deploymentId, await liveContracts(signal), await answering(req.deploymentId))
        }),
      ),
    status: (id, o = {}) => run('status', o, async (signal) => statusOf(id, await liveContracts(signal), await answering(id))),
    scale: (id, replicas, o = {}) =>
      run('scale', o, (signal) =>
        locked(id, async () => {
          const live = await liveContracts(signal)
          statusOf(id, live)
          const e = state[id]
          if (!e) return statusOf(id)
          e.wanted = replicas
          while (e.replicas.length > replicas) {
            await cancelReplica(e.replicas.at(-1)!, sig(signal))
            e.replicas.pop()
            save()
          }
          if (e.replicas.length < replicas) await deployUpTo(id, sig(signal))
          save()
          return statusOf(id, await liveContracts(signal), await answering(id))
        }),
      ),
    restart: (id, o = {}) => run('restart', o, async (signal) => statusOf(id, await liveContracts(signal), await answering(id))),
    destroy: (id, o = {}) =>
      run('destroy', o, (signal) =>
        locked(id, async () => {
          for (const r of state[id]?.replicas ?? []) await cancelReplica(r, sig(signal))
          // contracts this state does not know of (a crash between deploy and save) are found by name
          const { contracts } = await p.supervisor.call('listContracts', {}, sig(signal))
          const left = contracts.filter((c) => deploymentIdOfName(c.deploymentName ?? c.name) === id).map((c) => c.contractId)
          if (left.length) {
            recordOwnCancels(p.stateDir, id, left)
            await p.supervisor.call('cancelContracts', { contractIds: left }, sig(signal))
          }
          delete state[id]
          save()
        }),
      ),
    listOwned: (o = {}) =>
      run('listOwned', o, async (signal) => {
        const { contracts } = await p.supervisor.call('listContracts', {}, sig(signal))
        return contracts.flatMap((c): OwnedResource[] => {
          const dep = deploymentIdOfName(c.deploymentName ?? c.name)
          return dep ? [{ deploymentId: dep, kind: `${c.kind}-contract`, id: c.contractId, ...(c.nodeId && { placement: `node-${c.nodeId}` }) }] : []
        })
      }),
    async close() {
      await p.supervisor.close()
    },
  }
}

function groupByName(contracts: readonly GridContract[]): Map<string, GridContract[]> {
  const m = new Map<string, GridContract[]>()
  for (const c of contracts) {
    const n = c.deploymentName ?? c.name
    if (!n) continue
    m.set(n, [...(m.get(n) ?? []), c])
  }
  return m
}

/** Whether `host:port` accepts a TCP connection within `timeoutMs`. */
function tcpAnswers(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ host, port })
    const done = (ok: boolean) => {
      sock.destroy()
      resolve(ok)
    }
    sock.setTimeout(timeoutMs, () => done(false))
    sock.once('connect', () => done(true))
    sock.once('error', () => done(false))
  })
}
