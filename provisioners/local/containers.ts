/**
 * Container sources on the local target: podman on the daemon's machine runs each replica of an image pinned by
 * digest (pulled from the registry the blueprint names, its digest checked after the pull), with the spec's CPU and
 * memory limits, its port published on the operator's range on the local address, and a named volume per replica at
 * /data that outlives scale to zero and goes at destroy. Only the data volume is mounted and only the explicit
 * environment is passed: nothing of the daemon (its env, TOML, keys, state) is visible inside. Every container and
 * volume carries the operator's labels; a small manifest per deployment (`<rootDir>/containers/<id>.json`) keeps
 * the wanted replica count and ports across scale to zero and daemon restarts.
 */
import { createHash } from 'node:crypto'
import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { join } from 'node:path'
import type { Common } from '../../core/common.js'
import { AbortedError } from '../../core/errors.js'
import { classifyPullFailure, imageHasDigest, parsePs, parseVolumes, replicaOf, type ContainerInfo } from '../container/inspect.js'
import type { Podman } from '../container/podman.js'
import type { PodmanCapability } from '../container/detect.js'
import { containerSourceProblems, imageRef, LABEL, ownerFilter, parseName, replicaName, runArgs, volumeName, labelArgs } from '../container/rules.js'
import { readCgroupCpu } from '../cgroupCpu.js'
import { assertEnvAllowed } from '../envPolicy.js'
import { ProvisionError } from '../errors.js'
import { probeHttp, waitForHealthy } from '../health.js'
import type { DeploymentRequest, DeploymentStatus, OwnedResource, ReplicaUsage } from '../types.js'

export type LocalContainersParameters = {
  rootDir: string
  operatorId: string
  /** Address ports are published on and probed at. Default 127.0.0.1. */
  host: string
  portRange: [number, number]
  healthTimeoutMs: number
  stopGraceMs: number
  maxReplicas: number
  placement: string
  podman: Podman
  /** Resolves once podman was checked (see detectPodman). */
  capability: () => Promise<PodmanCapability>
  /** Pull timeout, ms. Default 600_000. */
  pullTimeoutMs?: number
}

export type LocalContainers = {
  /** True when this deployment is a container deployment of this operator (its manifest exists). */
  has(id: string): Promise<boolean>
  provision(req: DeploymentRequest, signal: AbortSignal): Promise<DeploymentStatus>
  status(id: string, signal: AbortSignal): Promise<DeploymentStatus>
  scale(id: string, replicas: number, signal: AbortSignal): Promise<DeploymentStatus>
  restart(id: string, signal: AbortSignal): Promise<DeploymentStatus>
  destroy(id: string, signal: AbortSignal): Promise<void>
  listOwned(signal: AbortSignal): Promise<OwnedResource[]>
}

type Manifest = {
  version: 1
  operatorId: string
  deploymentId: string
  request: DeploymentRequest
  replicas: number
  /** Host port per replica index, kept across scale to zero. */
  ports: Record<string, number>
  createdAt: string
}

const DEPLOYMENT_ID = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/

const failed = (id: string, message: string, o: { code?: string; retryable?: boolean; details?: string[]; reason?: 'PROVISION_FAILED' | 'ARTIFACT_UNREACHABLE' | 'ARTIFACT_DIGEST_MISMATCH' | 'UNHEALTHY' | 'MALFORMED_REQUEST' } = {}) =>
  new ProvisionError(message, { code: o.code ?? 'PROVISION_FAILED', reason: o.reason ?? 'PROVISION_FAILED', retryable: o.retryable ?? false, details: o.details, meta: { deploymentId: id } })

/** Tag of this operator's containers on this machine: one per (operator, root dir), as the SSH target's per host root. */
export function localContainerTag(operatorId: string, rootDir: string): string {
  return createHash('sha256').update(`${operatorId}\0${rootDir}`).digest('hex').slice(0, 10)
}

export function createLocalContainers(common: Common, p: LocalContainersParameters): LocalContainers {
  const log = common.logger
  const { podman, operatorId } = p
  const tag = localContainerTag(operatorId, p.rootDir)
  const dir = join(p.rootDir, 'containers')
  const file = (id: string) => join(dir, `${id}.json`)
  const endpointOf = (port: number) => `http://${p.host.includes(':') ? `[${p.host}]` : p.host}:${port}`
  const [portLo, portHi] = p.portRange
  const grace = String(Math.max(0, Math.round(p.stopGraceMs / 1000)))
  const pullTimeoutMs = p.pullTimeoutMs ?? 600_000

  async function read(id: string): Promise<Manifest | undefined> {
    let text: string
    try {
      text = await readFile(file(id), 'utf8')
    } catch {
      return undefined
    }
    let m: Manifest
    try {
      m = JSON.parse(text) as Manifest
    } catch {
      log.warn({ deploymentId: id, file: file(id) }, 'ignoring an unreadable container manifest')
      return undefined
    }
    if (!m || typeof m !== 'object' || m.version !== 1 || m.deploymentId !== id || m.operatorId !== operatorId || containerSourceProblems(m.request?.source as never).length) return undefined
    return m
  }
  async function write(m: Manifest): Promise<void> {
    await mkdir(dir, { recursive: true, mode: 0o700 })
    const tmp = `${file(m.deploymentId)}.${process.pid}.tmp`
    await writeFile(tmp, JSON.stringify(m, null, 2), { mode: 0o600 })
    await rename(tmp, file(m.deploymentId))
  }

  async function must(args: string[], what: string, id: string, signal: AbortSignal, timeoutMs?: number) {
    const r = await podman.exec(args, { signal, ...(timeoutMs && { timeoutMs }) })
    if (r.code !== 0) throw failed(id, `podman ${what} failed for ${id}`, { code: 'CONTAINER_RUNTIME_FAILED', retryable: true, details: r.stderr.trim().split('\n').slice(-3) })
    return r.stdout
  }

  async function containers(id: string | undefined, signal: AbortSignal): Promise<ContainerInfo[]> {
    const out = await must(['ps', '-a', ...ownerFilter({ operatorId, tag, ...(id && { deploymentId: id }) }), '--format', 'json'], 'ps', id ?? '-', signal)
    // labels are the filter; the name confirms it is one of ours (a label anyone can set)
    return parsePs(out).filter((c) => parseName(tag, c.name) && c.labels[LABEL.owner] === operatorId)
  }
  async function volumes(id: string | undefined, signal: AbortSignal) {
    const out = await must(['volume', 'ls', ...ownerFilter({ operatorId, tag, ...(id && { deploymentId: id }) }), '--format', 'json'], 'volume ls', id ?? '-', signal)
    return parseVolumes(out).filter((v) => parseName(tag, v.name)?.volume && v.labels[LABEL.owner] === operatorId)
  }

  async function usable(id: string): Promise<Extract<PodmanCapability, { ok: true }>> {
    const cap = await p.capability()
    if (!cap.ok) throw failed(id, `the local target cannot run container sources: ${cap.reason}`, { code: 'SOURCE_KIND_UNSUPPORTED' })
    return cap
  }

  function validate(req: DeploymentRequest): void {
    assertEnvAllowed(req.env)
    const problems = containerSourceProblems(req.source as never)
    if (typeof req.deploymentId !== 'string' || !DEPLOYMENT_ID.test(req.deploymentId)) problems.push(`deploymentId: got ${JSON.stringify(req.deploymentId)}, expected a DNS label`)
    for (const k of ['serviceId', 'blueprintId'] as const) if (!/^\d{1,78}$/.test(String(req[k]))) problems.push(`${k}: got ${JSON.stringify(req[k])}, expected a decimal string`)
    for (const k of ['vcpu', 'memoryGiB'] as const) {
      const v = req.spec?.[k]
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) problems.push(`spec.${k}: got ${v}, expected a finite number >= 0`)
    }
    const r = req.spec?.replicas
    if (!Number.isInteger(r) || r < 0 || r > p.maxReplicas) problems.push(`spec.replicas: got ${r}, expected an integer 0..${p.maxReplicas}`)
    for (const port of req.spec?.ports ?? []) if (!Number.isInteger(port) || port < 1 || port > 65535) problems.push(`spec.ports: got ${port}`)
    if (req.healthPath !== undefined && !/^\/[^\s]*$/.test(req.healthPath)) problems.push(`healthPath: got ${JSON.stringify(req.healthPath)}, expected a path starting with /`)
    if (problems.length) throw new ProvisionError('invalid deployment request', { code: 'REQUEST_INVALID', reason: 'MALFORMED_REQUEST', details: problems })
  }

  /** Pull `<image>@<digest>` (a no-op when present) and check the stored image carries that digest. */
  async function pull(m: Manifest, signal: AbortSignal): Promise<void> {
    const src = m.request.source
    if (src.kind !== 'container') throw new TypeError('not a container source')
    const ref = imageRef(src)
    const id = m.deploymentId
    const have = await podman.exec(['image', 'inspect', '--format', 'json', ref], { signal })
    if (!(have.code === 0 && imageHasDigest(have.stdout, src.image, src.digest))) {
      const r = await podman.exec(['pull', '--quiet', ref], { signal, timeoutMs: pullTimeoutMs })
      if (r.code !== 0) {
        const f = classifyPullFailure(r.stderr)
        if (f.kind === 'digest-unknown') throw failed(id, `the registry has no image ${ref}`, { code: 'ARTIFACT_DIGEST_MISMATCH', reason: 'ARTIFACT_DIGEST_MISMATCH', details: [f.detail] })
        if (f.kind === 'denied') throw failed(id, `the registry refused to serve ${ref}`, { code: 'ARTIFACT_UNREACHABLE', reason: 'ARTIFACT_UNREACHABLE', details: [f.detail] })
        throw failed(id, `could not pull ${ref}`, { code: 'ARTIFACT_UNREACHABLE', reason: 'ARTIFACT_UNREACHABLE', retryable: true, details: [f.detail] })
      }
      const got = await podman.exec(['image', 'inspect', '--format', 'json', ref], { signal })
      if (got.code !== 0 || !imageHasDigest(got.stdout, src.image, src.digest)) {
        throw failed(id, `the pulled image does not carry digest ${src.digest}`, { code: 'ARTIFACT_DIGEST_MISMATCH', reason: 'ARTIFACT_DIGEST_MISMATCH', details: [got.stderr.trim().slice(0, 200)] })
      }
    }
  }

  async function portFree(port: number): Promise<boolean> {
    const srv = createServer()
    return new Promise<boolean>((resolve) => {
      srv.once('error', () => resolve(false))
      srv.listen({ port, host: p.host, exclusive: true }, () => srv.close(() => resolve(true)))
    })
  }

  // ports handed out by this instance whose container may not be listening yet
  const reservedPorts = new Set<number>()
  async function allocatePort(signal: AbortSignal): Promise<number> {
    const taken = new Set<number>(reservedPorts)
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      if (!name.endsWith('.json')) continue
      const m = await read(name.slice(0, -5)).catch(() => undefined)
      for (const port of Object.values(m?.ports ?? {})) taken.add(port)
    }
    const span = portHi - portLo + 1
    const start = Math.floor(Math.random() * span)
    for (let k = 0; k < span; k++) {
      if (k % 64 === 0 && signal.aborted) throw new AbortedError('port allocation', signal.reason)
      const port = portLo + ((start + k) % span)
      if (taken.has(port)) continue
      if (await portFree(port)) {
        reservedPorts.add(port)
        return port
      }
    }
    throw new ProvisionError(`no free port in ${portLo}-${portHi}`, { code: 'NO_FREE_PORT', retryable: true })
  }

  const running = (c: ContainerInfo | undefined) => c?.state === 'running'

  async function startReplica(m: Manifest, i: number, cap: Extract<PodmanCapability, { ok: true }>, have: Set<string>, signal: AbortSignal): Promise<void> {
    const id = m.deploymentId
    const name = replicaName(tag, id, i)
    const vol = volumeName(tag, id, i)
    await podman.exec(['rm', '-f', '-t', '0', name], { signal })
    if (!have.has(vol)) {
      await must(['volume', 'create', ...labelArgs({ operatorId, tag, deploymentId: id, replica: i }), vol], 'volume create', id, signal)
      have.add(vol)
    }
    let port = m.ports[String(i)]
    if (port === undefined || !(await portFree(port))) {
      port = await allocatePort(signal)
      m.ports[String(i)] = port
      // intent first: the port is recorded before anything listens on it
      await write(m)
    }
    const args = runArgs({
      req: m.request,
      operatorId,
      tag,
      replica: i,
      hostPort: port,
      publishAddress: p.host,
      data: vol,
      markers: false,
      extra: [...cap.runArgs, '--http-proxy=false', '--security-opt', 'no-new-privileges', '--pids-limit', '4096'],
    })
    const r = await podman.exec(['run', '-d', '--name', name, ...args], { signal })
    reservedPorts.delete(port)
    if (r.code !== 0) throw failed(id, `replica ${i} of ${id} could not be started`, { code: 'CONTAINER_RUNTIME_FAILED', retryable: true, details: r.stderr.trim().split('\n').slice(-3) })
    log.info({ deploymentId: id, replica: i, port, container: name }, 'container replica started')
  }

  /** Bring the containers to `m.replicas`: start what is missing or of another image, remove the rest (volumes kept). */
  async function converge(m: Manifest, signal: AbortSignal, restartUnhealthy: boolean): Promise<void> {
    const id = m.deploymentId
    const cap = await usable(id)
    const ref = imageRef(m.request.source as never)
    const found = await containers(id, signal)
    const byIndex = new Map<number, ContainerInfo>()
    const extra: ContainerInfo[] = []
    for (const c of found) {
      const i = parseName(tag, c.name)!.replica
      if (i < m.replicas && replicaOf(c.labels) === i && c.image === ref && running(c) && c.ports.some((x) => x.hostPort === m.ports[String(i)])) byIndex.set(i, c)
      else extra.push(c)
    }
    if (restartUnhealthy) {
      for (const [i, c] of byIndex) {
        const probe = await probeHttp({ url: `${endpointOf(m.ports[String(i)]!)}${m.request.healthPath ?? '/'}`, timeoutMs: 3_000, signal })
        if (!probe.ok) {
          log.warn({ deploymentId: id, replica: i, error: probe.error, status: probe.status }, 'restarting unhealthy container replica')
          byIndex.delete(i)
          extra.push(c)
        }
      }
    }
    if (extra.length) await must(['rm', '-f', '-t', grace, ...extra.map((c) => c.name)], 'rm', id, signal)
    const missing = Array.from({ length: m.replicas }, (_, i) => i).filter((i) => !byIndex.has(i))
    if (!missing.length) return
    await pull(m, signal)
    const have = new Set((await volumes(id, signal)).map((v) => v.name))
    for (const i of missing) await startReplica(m, i, cap, have, signal)
    const results = await Promise.all(
      missing.map(async (i) => ({
        i,
        res: await waitForHealthy({ url: `${endpointOf(m.ports[String(i)]!)}${m.request.healthPath ?? '/'}`, deadlineMs: p.healthTimeoutMs, timeoutMs: 3_000, signal }),
      })),
    )
    const bad = results.filter((x) => !x.res.ok)
    if (bad.length) {
      const details: string[] = []
      for (const { i, res } of bad) {
        details.push(`replica ${i}: ${res.error ?? `HTTP ${res.status}`}`)
        const logs = await podman.exec(['logs', '--tail', '10', replicaName(tag, id, i)], { signal, timeoutMs: 10_000 })
        for (const line of `${logs.stdout}${logs.stderr}`.split('\n').filter(Boolean).slice(-10)) details.push(`  ${line}`)
      }
      throw failed(id, `${bad.length} container replica(s) of ${id} not healthy after ${p.healthTimeoutMs} ms`, { code: 'HEALTH_TIMEOUT', reason: 'UNHEALTHY', retryable: true, details })
    }
  }

  async function statusOf(id: string, signal: AbortSignal): Promise<DeploymentStatus> {
    const m = await read(id)
    const found = await containers(id, signal)
    if (!m) {
      const vols = await volumes(id, signal)
      const leaked = found.length + vols.length
      return {
        deploymentId: id,
        exists: leaked > 0,
        replicasWanted: 0,
        replicasReady: 0,
        endpoints: [],
        healthy: leaked === 0,
        placement: p.placement,
        ...(leaked ? { detail: `${found.length} container(s) and ${vols.length} volume(s) without a manifest` } : {}),
      }
    }
    const ref = imageRef(m.request.source as never)
    const endpoints: string[] = []
    const problems: string[] = []
    const usage: ReplicaUsage[] = []
    const at = Date.now()
    for (let i = 0; i < m.replicas; i++) {
      const c = found.find((x) => x.name === replicaName(tag, id, i))
      const port = m.ports[String(i)]
      if (!c || !running(c) || port === undefined || c.image !== ref) {
        problems.push(`replica ${i} ${c ? c.state : 'missing'}`)
        continue
      }
      const probe = await probeHttp({ url: `${endpointOf(port)}${m.request.healthPath ?? '/'}`, timeoutMs: 3_000, signal })
      if (probe.ok) endpoints.push(endpointOf(port))
      else problems.push(`replica ${i} unhealthy: ${probe.error ?? `HTTP ${probe.status}`}`)
      const cpu = c.pid > 0 ? await readCgroupCpu(c.pid) : undefined
      if (cpu !== undefined) usage.push({ index: i, id: c.id.slice(0, 12), cpuSeconds: cpu })
    }
    const beyond = found.filter((c) => parseName(tag, c.name)!.replica >= m.replicas && running(c)).length
    if (beyond) problems.push(`${beyond} container(s) beyond the wanted replicas`)
    return {
      deploymentId: id,
      exists: true,
      replicasWanted: m.replicas,
      replicasReady: endpoints.length,
      endpoints,
      healthy: endpoints.length === m.replicas,
      placement: p.placement,
      ...(usage.length ? { usage: { at, replicas: usage } } : {}),
      ...(problems.length ? { detail: problems.join('; ') } : {}),
    }
  }

  const notFound = (id: string) => new ProvisionError(`deployment ${id} does not exist on this host`, { code: 'DEPLOYMENT_NOT_FOUND', reason: 'PROVISION_FAILED', meta: { deploymentId: id } })

  return {
    // the manifest is written before any container or volume and removed after the last (intent first), so it alone
    // answers: no podman call on the status path of native deployments; labelled leftovers are found by listOwned
    async has(id) {
      return (await read(id)) !== undefined
    },

    async provision(req, signal) {
      validate(req)
      const id = req.deploymentId
      await usable(id)
      const existing = await read(id)
      const m: Manifest = existing
        ? { ...existing, request: req, replicas: req.spec.replicas }
        : { version: 1, operatorId, deploymentId: id, request: req, replicas: req.spec.replicas, ports: {}, createdAt: new Date().toISOString() }
      // intent first: the manifest exists before any container or volume
      await write(m)
      try {
        await converge(m, signal, false)
      } catch (err) {
        // a refused image (no such digest) leaves nothing: only what this call created and never started goes
        if (!existing && (await containers(id, signal).catch(() => [1])).length === 0) {
          for (const v of await volumes(id, signal).catch(() => [])) await podman.exec(['volume', 'rm', '-f', v.name], { signal }).catch(() => undefined)
          await rm(file(id), { force: true })
        }
        throw err
      }
      log.info({ deploymentId: id, replicas: m.replicas }, 'container deployment provisioned')
      return statusOf(id, signal)
    },

    status: statusOf,

    async scale(id, replicas, signal) {
      const m = await read(id)
      if (!m) throw notFound(id)
      m.replicas = replicas
      await write(m)
      await converge(m, signal, false)
      log.info({ deploymentId: id, replicas }, 'container deployment scaled')
      return statusOf(id, signal)
    },

    async restart(id, signal) {
      const m = await read(id)
      if (!m) throw notFound(id)
      await converge(m, signal, true)
      return statusOf(id, signal)
    },

    async destroy(id, signal) {
      if (!(await p.capability()).ok) {
        await rm(file(id), { force: true })
        return
      }
      const found = await containers(id, signal)
      if (found.length) await must(['rm', '-f', '-t', grace, ...found.map((c) => c.name)], 'rm', id, signal)
      const vols = await volumes(id, signal)
      if (vols.length) await must(['volume', 'rm', '-f', ...vols.map((v) => v.name)], 'volume rm', id, signal)
      await rm(file(id), { force: true })
      if (found.length || vols.length) log.info({ deploymentId: id, containers: found.length, volumes: vols.length }, 'container deployment destroyed')
    },

    async listOwned(signal) {
      const out: OwnedResource[] = []
      if ((await p.capability()).ok) {
        for (const c of await containers(undefined, signal)) out.push({ deploymentId: parseName(tag, c.name)!.deploymentId, kind: 'container', id: c.name, placement: p.placement })
        for (const v of await volumes(undefined, signal)) out.push({ deploymentId: parseName(tag, v.name)!.deploymentId, kind: 'volume', id: v.name, placement: p.placement })
      }
      for (const name of await readdir(dir).catch(() => [] as string[])) {
        if (!name.endsWith('.json')) continue
        const m = await read(name.slice(0, -5)).catch(() => undefined)
        if (m) out.push({ deploymentId: m.deploymentId, kind: 'container-manifest', id: file(m.deploymentId), placement: p.placement })
      }
      return out
    },
  }
}
