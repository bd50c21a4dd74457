/**
 * The Kubernetes target: one namespace per deployment on one of several clusters (kubeconfig files), written with
 * server-side apply (PATCH application/apply-patch+yaml, fieldManager "blueprint-operator", force) so provisioning
 * again adopts and converges whatever an earlier call or a crashed daemon left. Replica changes go through the
 * /scale subresource (read, then replace with its resourceVersion; a 409 Conflict re-reads and retries).
 *
 * Scale to zero deletes the HPA (an HPA's minReplicas cannot be 0 without the HPAScaleToZero feature gate) and sets
 * replicas to 0; StatefulSet volume claims stay. Scaling to n > 0 writes the HPA with minimum n (see `upperBound` for
 * its maximum), then sets the replicas. A tier change is best made with `provision` and the new spec (idempotent),
 * which rewrites every bound from the spec. Destroy deletes the namespace (the API server cascades to everything in it)
 * and waits until it is gone; 404 is success.
 */
import type { V1Deployment, V1Namespace, V1NamespaceList, V1Scale, V1Service, V1StatefulSet } from '@kubernetes/client-node'
import type { Common } from '../../core/common.js'
import { TimeoutError } from '../../core/errors.js'
import { retry, sleep } from '../../core/retry.js'
import type { TierName, TierPolicy } from '../../core/spec.js'
import { ConfigError } from '../../config/load.js'
import { ProvisionError, TargetUnreachableError } from '../errors.js'
import type { CallOptions, DeploymentRequest, DeploymentStatus, OwnedResource, Provisioner } from '../types.js'
import { httpStatusOf } from './classifyError.js'
import { createClusterClient, type ClusterClient, type ClusterParameters } from './cluster.js'
import { boundsFor, buildHpa, buildManifests, type Manifests, type WorkloadKind } from './manifests.js'
import {
  deploymentLabel,
  fieldManager,
  isDnsLabel,
  isLabelValue,
  managedByLabel,
  managedByValue,
  maxReplicasAnnotation,
  namespaceOf,
  objectName,
  ownedSelector,
  ownerLabel,
  replicasAnnotation,
  restartedAtAnnotation,
  workloadKindAnnotation,
} from './names.js'

export type KubernetesProvisionerParameters = {
  /** Written into every object's `blueprint-operator/owner` label (a label value: at most 63 characters). */
  operatorId: string
  /** At least one cluster; names must be unique. */
  clusters: ClusterParameters[]
  /** The operator's scaling tiers (fallback for the HPA maximum when a spec carries none). */
  tiers: Record<TierName, TierPolicy>
  /** Timeout of each API request in ms. Default 15_000. */
  requestTimeoutMs?: number
  /** How long provision/scale/restart wait for ready replicas before returning an unhealthy status, in ms. Default 120_000. */
  readyTimeoutMs?: number
  /** How long destroy waits for the namespace to disappear, in ms. Default 120_000. */
  deleteTimeoutMs?: number
  /** Interval between readiness polls in ms. Default 1_000. */
  pollIntervalMs?: number
  /** "persistent" (default): StatefulSet + PVC when a spec asks for storage; "ephemeral": always a Deployment. */
  storage?: 'persistent' | 'ephemeral'
  /** Service type; default "ClusterIP" (endpoints are then `http://app.<namespace>.svc:<port>`). */
  serviceType?: 'ClusterIP' | 'LoadBalancer'
  /** Node label matched against the GPU model; default "nvidia.com/gpu.product". */
  gpuModelLabel?: string
  /** HPA target average CPU utilisation, percent. Default 70. */
  targetCpuUtilization?: number
}

const applyPatch = 'application/apply-patch+yaml'
const mergePatch = 'application/merge-patch+json'

type Op = { signal: AbortSignal; deadline: number; ms: number; what: string }
type Located = { cluster: ClusterClient; ns: V1Namespace }

/** Create the Kubernetes provisioner; throws ConfigError when a parameter or kubeconfig is unusable. */
export function createKubernetesProvisioner(common: Common, p: KubernetesProvisionerParameters): Provisioner {
  const problems: { path: string; message: string }[] = []
  if (!p.operatorId || !isLabelValue(p.operatorId)) problems.push({ path: 'operatorId', message: `got ${JSON.stringify(p.operatorId)}, expected a Kubernetes label value` })
  if (!p.clusters.length) problems.push({ path: 'kubernetes.clusters', message: 'expected at least one cluster' })
  const names = new Set<string>()
  for (const c of p.clusters) {
    if (names.has(c.name)) problems.push({ path: `kubernetes.clusters.${c.name}`, message: 'duplicate cluster name' })
    names.add(c.name)
  }
  if (problems.length) throw new ConfigError('kubernetes provisioner', problems)

  const log = common.logger.child({ module: 'provisioner.kubernetes' })
  const clusters = p.clusters.map((c) => createClusterClient(common, c))
  const requestTimeoutMs = p.requestTimeoutMs ?? 15_000
  const readyTimeoutMs = p.readyTimeoutMs ?? 120_000
  const deleteTimeoutMs = p.deleteTimeoutMs ?? 120_000
  const pollMs = p.pollIntervalMs ?? 1_000
  /** deployment id -> cluster name, learned from provision and lookups; a hint only, the clusters are the truth. */
  const where = new Map<string, string>()

  const op = (what: string, o: CallOptions | undefined, defaultMs: number): Op => {
    const signals = [common.signal, o?.signal].filter((s): s is AbortSignal => !!s)
    const ms = o?.timeoutMs ?? defaultMs
    // one per-operation signal combining the shutdown signal and the caller's
    return { what, signal: AbortSignal.any(signals), deadline: Date.now() + ms, ms }
  }
  const left = (o: Op) => {
    const ms = o.deadline - Date.now()
    if (ms <= 0) throw new TimeoutError(o.what, o.ms)
    return ms
  }
  const call = <T>(cl: ClusterClient, what: string, o: Op, fn: Parameters<ClusterClient['call']>[1], contentType?: string): Promise<T> => {
    const budget = left(o)
    return cl.call(what, fn, { signal: o.signal, timeoutMs: Math.min(requestTimeoutMs, budget), deadlineBound: budget < requestTimeoutMs, ...(contentType && { contentType }) }) as Promise<T>
  }
  const is404 = (err: unknown) => httpStatusOf(err) === 404
  const ignore404 = async (f: Promise<unknown>) => {
    try {
      await f
    } catch (err) {
      if (!is404(err)) throw err
    }
  }

  const readNamespace = async (cl: ClusterClient, id: string, o: Op): Promise<V1Namespace | undefined> => {
    try {
      return await call<V1Namespace>(cl, `read namespace ${id}`, o, (opt) => cl.core.readNamespace({ name: namespaceOf(id) }, opt))
    } catch (err) {
      if (is404(err)) return undefined
      throw err
    }
  }
  const ownedByUs = (ns: V1Namespace) => ns.metadata?.labels?.[ownerLabel] === p.operatorId && ns.metadata?.labels?.[managedByLabel] === managedByValue
  const kindOf = (ns: V1Namespace): WorkloadKind => (ns.metadata?.annotations?.[workloadKindAnnotation] === 'StatefulSet' ? 'StatefulSet' : 'Deployment')

  /** Find the cluster holding a deployment this operator owns; undefined when no reachable cluster has it. */
  const locate = async (id: string, o: Op): Promise<Located | undefined> => {
    const hinted = where.get(id)
    const order = [...clusters].sort((a, b) => (a.name === hinted ? -1 : b.name === hinted ? 1 : 0))
    let unreachable: unknown
    for (const cl of order) {
      try {
        const ns = await readNamespace(cl, id, o)
        if (ns && ownedByUs(ns)) {
          where.set(id, cl.name)
          return { cluster: cl, ns }
        }
      } catch (err) {
        // one unreachable cluster must not hide the deployment on another; anything else is final
        if (!(err instanceof TargetUnreachableError)) throw err
        unreachable ??= err
      }
    }
    where.delete(id)
    if (unreachable) throw unreachable
    return undefined
  }

  const pickCluster = (req: DeploymentRequest): ClusterClient => {
    if (req.placement) {
      const cl = clusters.find((c) => c.name === req.placement)
      if (!cl) throw new ProvisionError(`no Kubernetes cluster named ${JSON.stringify(req.placement)}`, { retryable: false, details: [`clusters: ${clusters.map((c) => c.name).join(', ')}`] })
      return cl
    }
    const regions = req.spec.regions.map((r) => r.toLowerCase())
    if (regions.length) {
      const match = clusters.find((c) => c.region && regions.some((r) => c.region!.toLowerCase().startsWith(r)))
      if (match) return match
    }
    return clusters[0]!
  }

  const apply = async (cl: ClusterClient, m: Manifests, o: Op) => {
    const ns = namespaceOf(m.namespace.metadata!.name!)
    const base = { fieldManager, force: true }
    await call(cl, `apply namespace ${ns}`, o, (opt) => cl.core.patchNamespace({ name: ns, body: m.namespace, ...base }, opt), applyPatch)
    // The HPA before the workload: an old HPA with a higher minimum would otherwise pull the new replica count back up.
    await writeHpa(cl, ns, m.hpa, o)
    if (m.kind === 'StatefulSet') {
      await call(cl, `apply statefulset ${ns}/${objectName}`, o, (opt) => cl.apps.patchNamespacedStatefulSet({ name: objectName, namespace: ns, body: m.workload, ...base }, opt), applyPatch)
    } else {
      await call(cl, `apply deployment ${ns}/${objectName}`, o, (opt) => cl.apps.patchNamespacedDeployment({ name: objectName, namespace: ns, body: m.workload, ...base }, opt), applyPatch)
    }
    if (m.service) {
      const svc = m.service
      await call(cl, `apply service ${ns}/${objectName}`, o, (opt) => cl.core.patchNamespacedService({ name: objectName, namespace: ns, body: svc, ...base }, opt), applyPatch)
    } else {
      await ignore404(call(cl, `delete service ${ns}/${objectName}`, o, (opt) => cl.core.deleteNamespacedService({ name: objectName, namespace: ns }, opt)))
    }
  }

  const writeHpa = async (cl: ClusterClient, ns: string, hpa: Manifests['hpa'], o: Op) => {
    if (hpa) {
      await call(cl, `apply horizontalpodautoscaler ${ns}/${objectName}`, o, (opt) =>
        cl.autoscaling.patchNamespacedHorizontalPodAutoscaler({ name: objectName, namespace: ns, body: hpa, fieldManager, force: true }, opt), applyPatch)
    } else {
      await ignore404(call(cl, `delete horizontalpodautoscaler ${ns}/${objectName}`, o, (opt) => cl.autoscaling.deleteNamespacedHorizontalPodAutoscaler({ name: objectName, namespace: ns }, opt)))
    }
  }

  const readWorkload = async (cl: ClusterClient, ns: string, kind: WorkloadKind, o: Op) => {
    try {
      return kind === 'StatefulSet'
        ? await call<V1StatefulSet>(cl, `read statefulset ${ns}/${objectName}`, o, (opt) => cl.apps.readNamespacedStatefulSet({ name: objectName, namespace: ns }, opt))
        : await call<V1Deployment>(cl, `read deployment ${ns}/${objectName}`, o, (opt) => cl.apps.readNamespacedDeployment({ name: objectName, namespace: ns }, opt))
    } catch (err) {
      if (is404(err)) return undefined
      throw err
    }
  }

  const endpointsOf = (svc: V1Service, ns: string): string[] => {
    const ports = (svc.spec?.ports ?? []).map((x) => x.port)
    const ingress = svc.status?.loadBalancer?.ingress?.[0]
    const host = ingress?.ip ?? ingress?.hostname ?? `${svc.metadata?.name ?? objectName}.${ns}.svc`
    return ports.map((port) => `http://${host}:${port}`)
  }

  const statusIn = async (loc: Located, id: string, o: Op): Promise<DeploymentStatus> => {
    const { cluster: cl, ns: nsObj } = loc
    const ns = namespaceOf(id)
    const placement = `${cl.name}/${ns}`
    if (nsObj.metadata?.deletionTimestamp || nsObj.status?.phase === 'Terminating') {
      return { deploymentId: id, exists: true, replicasWanted: 0, replicasReady: 0, endpoints: [], healthy: false, placement, detail: 'namespace is being deleted' }
    }
    const kind = kindOf(nsObj)
    const w = await readWorkload(cl, ns, kind, o)
    if (!w) return { deploymentId: id, exists: true, replicasWanted: 0, replicasReady: 0, endpoints: [], healthy: false, placement, detail: `${kind} ${objectName} is missing` }
    const wanted = w.spec?.replicas ?? 1
    const ready = w.status?.readyReplicas ?? 0
    const observed = (w.status?.observedGeneration ?? 0) >= (w.metadata?.generation ?? 0)
    let svc: V1Service | undefined
    try {
      svc = await call<V1Service>(cl, `read service ${ns}/${objectName}`, o, (opt) => cl.core.readNamespacedService({ name: objectName, namespace: ns }, opt))
    } catch (err) {
      if (!is404(err)) throw err
    }
    const healthy = observed && ready === wanted
    return {
      deploymentId: id,
      exists: true,
      replicasWanted: wanted,
      replicasReady: ready,
      endpoints: svc && ready > 0 ? endpointsOf(svc, ns) : [],
      healthy,
      placement,
      detail: `${kind} ${ns}/${objectName}: ${ready}/${wanted} ready${observed ? '' : ', rollout not yet observed'}`,
    }
  }

  const missing = (id: string): DeploymentStatus => ({ deploymentId: id, exists: false, replicasWanted: 0, replicasReady: 0, endpoints: [], healthy: true })

  /** Poll until healthy, the ready timeout or the operation deadline; returns the last status either way. */
  const waitReady = async (cl: ClusterClient, id: string, o: Op): Promise<DeploymentStatus> => {
    const until = Math.min(Date.now() + readyTimeoutMs, o.deadline - Math.min(requestTimeoutMs, 2_000))
    let interval = Math.min(100, pollMs)
    for (;;) {
      const ns = await readNamespace(cl, id, o)
      if (!ns) return missing(id)
      const st = await statusIn({ cluster: cl, ns }, id, o)
      if (st.healthy || Date.now() + interval > until) return st
      await sleep(interval, o.signal)
      interval = Math.min(pollMs, interval * 2)
    }
  }

  const requireOwned = async (id: string, o: Op): Promise<Located> => {
    const loc = await locate(id, o)
    if (!loc) throw new ProvisionError(`deployment ${id} does not exist on any Kubernetes cluster`, { retryable: false, meta: { deploymentId: id } })
    return loc
  }

  /**
   * The autoscaling upper bound after scale(n): the one recorded at the last provision when n is that provision's
   * replica count (a scale back from zero); otherwise, when exactly one tier of the operator's table starts at n
   * replicas, that tier's maximum (the daemon changes tiers by scaling to the new tier's minReplicas); otherwise the
   * recorded one.
   */
  const upperBound = (n: number, recordedReplicas: number, recordedMax: number): number => {
    const recorded = Number.isFinite(recordedMax) ? recordedMax : n
    if (n === recordedReplicas) return recorded
    const byMin = Object.values(p.tiers).filter((t) => t.minReplicas === n)
    return byMin.length === 1 ? byMin[0]!.maxReplicas : recorded
  }

  /** Set replicas through the /scale subresource with optimistic concurrency. */
  const setReplicas = async (cl: ClusterClient, ns: string, kind: WorkloadKind, replicas: number, o: Op) => {
    const res = kind === 'StatefulSet' ? 'statefulset' : 'deployment'
    await retry(
      async () => {
        const current = await call<V1Scale>(cl, `read ${res} scale ${ns}/${objectName}`, o, (opt) =>
          kind === 'StatefulSet' ? cl.apps.readNamespacedStatefulSetScale({ name: objectName, namespace: ns }, opt) : cl.apps.readNamespacedDeploymentScale({ name: objectName, namespace: ns }, opt))
        if (current.spec?.replicas === replicas) return
        const body = {
          apiVersion: 'autoscaling/v1',
          kind: 'Scale',
          metadata: { name: objectName, namespace: ns, resourceVersion: current.metadata?.resourceVersion },
          spec: { replicas },
        }
        await call(cl, `replace ${res} scale ${ns}/${objectName}`, o, (opt) =>
          kind === 'StatefulSet'
            ? cl.apps.replaceNamespacedStatefulSetScale({ name: objectName, namespace: ns, body, fieldManager }, opt)
            : cl.apps.replaceNamespacedDeploymentScale({ name: objectName, namespace: ns, body, fieldManager }, opt))
      },
      { attempts: 5, baseMs: 50, maxMs: 1_000, signal: o.signal, shouldRetry: (err) => httpStatusOf(err) === 409 },
    )
  }

  return {
    id: 'kubernetes',
    sourceKinds: ['container'],

    async provision(req, o) {
      const manifestsFor = (cl: ClusterClient) =>
        buildManifests(req, {
          operatorId: p.operatorId,
          tiers: p.tiers,
          ...(p.storage && { storage: p.storage }),
          ...(cl.storageClass && { storageClass: cl.storageClass }),
          ...(p.serviceType && { serviceType: p.serviceType }),
          ...(p.gpuModelLabel && { gpuModelLabel: p.gpuModelLabel }),
          ...(p.targetCpuUtilization && { targetCpuUtilization: p.targetCpuUtilization }),
        })
      let cl = pickCluster(req)
      let m = manifestsFor(cl)
      const x = op(`provision ${req.deploymentId}`, o, readyTimeoutMs + 60_000)
      const id = req.deploymentId
      if (!req.placement && clusters.length > 1) {
        // without a placement, a deployment stays on the cluster where an earlier call put it
        const found = await locate(id, x)
        if (found && found.cluster !== cl) {
          cl = found.cluster
          m = manifestsFor(cl)
        }
      }
      let existing = await readNamespace(cl, id, x)
      if (existing && !ownedByUs(existing)) {
        throw new ProvisionError(`namespace ${id} on ${cl.label} exists and is not owned by this operator`, {
          retryable: false,
          details: [`${ownerLabel}: ${existing.metadata?.labels?.[ownerLabel] ?? '(none)'}`],
          meta: { deploymentId: id, cluster: cl.name },
        })
      }
      // A namespace being deleted refuses new objects; wait for it to go, then create it afresh.
      while (existing?.metadata?.deletionTimestamp) {
        await sleep(Math.min(pollMs, 500), x.signal)
        left(x)
        existing = await readNamespace(cl, id, x)
      }
      where.set(id, cl.name)
      if (existing && kindOf(existing) !== m.kind) {
        const ns = namespaceOf(id)
        log.info({ deploymentId: id, from: kindOf(existing), to: m.kind }, 'workload kind changes; deleting the old workload')
        await ignore404(
          kindOf(existing) === 'StatefulSet'
            ? call(cl, `delete statefulset ${ns}/${objectName}`, x, (opt) => cl.apps.deleteNamespacedStatefulSet({ name: objectName, namespace: ns }, opt))
            : call(cl, `delete deployment ${ns}/${objectName}`, x, (opt) => cl.apps.deleteNamespacedDeployment({ name: objectName, namespace: ns }, opt)),
        )
      }
      await apply(cl, m, x)
      log.info({ deploymentId: id, cluster: cl.name, kind: m.kind, replicas: m.replicas, hpa: !!m.hpa }, 'applied')
      return waitReady(cl, id, x)
    },

    async status(id, o) {
      const x = op(`status ${id}`, o, requestTimeoutMs * 3)
      const loc = await locate(id, x)
      return loc ? statusIn(loc, id, x) : missing(id)
    },

    async scale(id, replicas, o) {
      if (!Number.isInteger(replicas) || replicas < 0) {
        throw new ProvisionError(`scale ${id}: got ${replicas} replicas, expected an integer >= 0`, { reason: 'MALFORMED_REQUEST', retryable: false })
      }
      const x = op(`scale ${id}`, o, readyTimeoutMs + 60_000)
      const { cluster: cl, ns: nsObj } = await requireOwned(id, x)
      const ns = namespaceOf(id)
      const kind = kindOf(nsObj)
      const w = await readWorkload(cl, ns, kind, x)
      if (!w) throw new ProvisionError(`scale ${id}: ${kind} ${ns}/${objectName} is missing; provision it again`, { retryable: false })
      const recordedMax = Number(w.metadata?.annotations?.[maxReplicasAnnotation])
      const recordedReplicas = Number(w.metadata?.annotations?.[replicasAnnotation])
      if (replicas === 0) {
        // The HPA goes first so nothing can scale the workload back up in between.
        await writeHpa(cl, ns, undefined, x)
        await setReplicas(cl, ns, kind, 0, x)
      } else {
        // The HPA goes first: its new minimum is `replicas`, so it never pulls the count away from what is set next.
        await writeHpa(cl, ns, buildHpa(id, p.operatorId, kind, boundsFor(replicas, upperBound(replicas, recordedReplicas, recordedMax)), p.targetCpuUtilization), x)
        await setReplicas(cl, ns, kind, replicas, x)
      }
      log.info({ deploymentId: id, replicas }, 'scaled')
      return waitReady(cl, id, x)
    },

    async restart(id, o) {
      const x = op(`restart ${id}`, o, readyTimeoutMs + 60_000)
      const { cluster: cl, ns: nsObj } = await requireOwned(id, x)
      const ns = namespaceOf(id)
      const body = { spec: { template: { metadata: { annotations: { [restartedAtAnnotation]: new Date().toISOString() } } } } }
      if (kindOf(nsObj) === 'StatefulSet') {
        await call(cl, `restart statefulset ${ns}/${objectName}`, x, (opt) => cl.apps.patchNamespacedStatefulSet({ name: objectName, namespace: ns, body, fieldManager }, opt), mergePatch)
      } else {
        await call(cl, `restart deployment ${ns}/${objectName}`, x, (opt) => cl.apps.patchNamespacedDeployment({ name: objectName, namespace: ns, body, fieldManager }, opt), mergePatch)
      }
      return waitReady(cl, id, x)
    },

    async destroy(id, o) {
      const x = op(`destroy ${id}`, o, deleteTimeoutMs + 30_000)
      if (!isDnsLabel(id)) return
      for (;;) {
        const loc = await locate(id, x)
        if (!loc) return
        const { cluster: cl } = loc
        if (!loc.ns.metadata?.deletionTimestamp) {
          await ignore404(call(cl, `delete namespace ${id}`, x, (opt) => cl.core.deleteNamespace({ name: namespaceOf(id), propagationPolicy: 'Background' }, opt)))
          log.info({ deploymentId: id, cluster: cl.name }, 'namespace deleted')
        }
        const until = Math.min(Date.now() + deleteTimeoutMs, x.deadline)
        let interval = Math.min(50, pollMs)
        while (await readNamespace(cl, id, x)) {
          if (Date.now() + interval > until) throw new TimeoutError(`deletion of namespace ${id} on ${cl.label}`, deleteTimeoutMs)
          await sleep(interval, x.signal)
          interval = Math.min(pollMs, interval * 2)
        }
        where.delete(id)
      }
    },

    async listOwned(o) {
      const x = op('list owned namespaces', o, requestTimeoutMs * 2)
      const lists = await Promise.all(
        clusters.map(async (cl) => {
          const list = await call<V1NamespaceList>(cl, 'list namespaces', x, (opt) => cl.core.listNamespace({ labelSelector: ownedSelector(p.operatorId) }, opt))
          return list.items.filter(ownedByUs).map(
            (ns): OwnedResource => ({ deploymentId: ns.metadata?.labels?.[deploymentLabel] ?? ns.metadata!.name!, kind: 'namespace', id: ns.metadata!.name!, placement: cl.name }),
          )
        }),
      )
      return lists.flat()
    },

    async close() {
      where.clear()
      for (const cl of clusters) cl.close()
    },
  }
}
