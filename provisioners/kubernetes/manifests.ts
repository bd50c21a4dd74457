/**
 * Pure translation of a DeploymentRequest into the Kubernetes objects the provisioner applies: a Namespace, a
 * Deployment or StatefulSet, a Service for its ports and an autoscaling/v2 HorizontalPodAutoscaler.
 *
 * Storage rule: a StatefulSet with one PersistentVolumeClaim per replica (mounted at /data, kept when scaled to zero)
 * when `spec.storageGiB > 0` and the operator's storage mode is "persistent" (the default); otherwise a Deployment
 * whose container gets `spec.storageGiB` as ephemeral-storage request and limit.
 *
 * Autoscaling rule: the HPA minimum is `spec.replicas` (at least 1), its maximum `spec.maxReplicas` (or the tier's
 * `maxReplicas` from the operator's tiers table when the spec has none). When the two are equal (the basic tier's
 * fixed 1) no HPA is written: the replica count is fixed.
 */
import type {
  V1Container,
  V1Deployment,
  V1EnvVar,
  V1Namespace,
  V1PodTemplateSpec,
  V1Service,
  V1StatefulSet,
  V2HorizontalPodAutoscaler,
} from '@kubernetes/client-node'
import type { TierName, TierPolicy } from '../../core/spec.js'
import { ProvisionError } from '../errors.js'
import type { DeploymentRequest } from '../types.js'
import {
  dataMountPath,
  dataVolumeName,
  deploymentLabel,
  isDnsLabel,
  maxReplicasAnnotation,
  namespaceOf,
  replicasAnnotation,
  objectName,
  ownershipLabels,
  workloadKindAnnotation,
} from './names.js'

export type WorkloadKind = 'Deployment' | 'StatefulSet'

export type ManifestOptions = {
  operatorId: string
  /** The operator's tiers table (fallback for the autoscaling maximum). */
  tiers: Record<TierName, TierPolicy>
  /** "persistent" (default): StatefulSet + PVC when storage is asked for; "ephemeral": always a Deployment. */
  storage?: 'persistent' | 'ephemeral'
  /** StorageClass of the volume claims; the cluster default when absent. */
  storageClass?: string
  /** Service type; default "ClusterIP". */
  serviceType?: 'ClusterIP' | 'LoadBalancer'
  /** Node label matched against the GPU model; default "nvidia.com/gpu.product". */
  gpuModelLabel?: string
  /** HPA target average CPU utilisation in percent; default 70. */
  targetCpuUtilization?: number
}

export type AutoscalingBounds = { minReplicas: number; maxReplicas: number }

export type Manifests = {
  namespace: V1Namespace
  kind: WorkloadKind
  workload: V1Deployment | V1StatefulSet
  /** Absent when the blueprint exposes no port. */
  service: V1Service | undefined
  /** Absent when the replica count is fixed (min equals max) or zero. */
  hpa: V2HorizontalPodAutoscaler | undefined
  replicas: number
  /** Upper bound recorded on the workload so a scale back from zero can restore the HPA. */
  maxReplicas: number
}

const digestRe = /^sha256:[0-9a-f]{64}$/
const envKeyRe = /^[A-Z_][A-Z0-9_]*$/
const reservedEnv = ['PORT', 'PORTS', 'HOST', 'SERVICE_ID', 'BLUEPRINT_ID', 'DEPLOYMENT_ID', 'REPLICA_INDEX', 'DATA_DIR', 'PATH']

const malformed = (message: string, details: string[] = []) =>
  new ProvisionError(message, { reason: 'MALFORMED_REQUEST', retryable: false, details })

/** CPU as a millicore quantity ("500m"); at least 1m. */
export function cpuQuantity(vcpu: number): string {
  return `${Math.max(1, Math.round(vcpu * 1000))}m`
}

/** GiB as a mebibyte quantity ("1536Mi"), rounded up; at least 1Mi. */
export function gibQuantity(gib: number): string {
  return `${Math.max(1, Math.ceil(gib * 1024))}Mi`
}

/** The HPA for a workload, or undefined when the bounds leave nothing to autoscale. */
export function buildHpa(
  deploymentId: string,
  operatorId: string,
  kind: WorkloadKind,
  bounds: AutoscalingBounds,
  targetCpuUtilization = 70,
): V2HorizontalPodAutoscaler | undefined {
  if (bounds.minReplicas < 1 || bounds.maxReplicas <= bounds.minReplicas) return undefined
  return {
    apiVersion: 'autoscaling/v2',
    kind: 'HorizontalPodAutoscaler',
    metadata: { name: objectName, namespace: namespaceOf(deploymentId), labels: ownershipLabels(operatorId, deploymentId) },
    spec: {
      scaleTargetRef: { apiVersion: 'apps/v1', kind, name: objectName },
      minReplicas: bounds.minReplicas,
      maxReplicas: bounds.maxReplicas,
      metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: targetCpuUtilization } } }],
    },
  }
}

/** Autoscaling bounds for `replicas` running replicas under an upper bound `max`. */
export function boundsFor(replicas: number, max: number): AutoscalingBounds {
  const minReplicas = Math.max(1, replicas)
  return { minReplicas, maxReplicas: Math.max(minReplicas, max) }
}

/** Check the request and build every object; throws ProvisionError(MALFORMED_REQUEST) on a bad request. */
export function buildManifests(req: DeploymentRequest, o: ManifestOptions): Manifests {
  const problems: string[] = []
  const { spec, source } = req
  if (!isDnsLabel(req.deploymentId)) problems.push(`deploymentId: got ${JSON.stringify(req.deploymentId)}, expected a DNS label (a-z, 0-9, "-", at most 63)`)
  if (source.kind !== 'container') problems.push(`source.kind: got ${JSON.stringify(source.kind)}, expected "container"`)
  else {
    if (!digestRe.test(source.digest)) problems.push(`source.digest: got ${JSON.stringify(source.digest)}, expected sha256:<64 hex>`)
    const last = source.image.split('/').pop() ?? ''
    if (!source.image || /\s/.test(source.image) || last.includes(':') || last.includes('@'))
      problems.push(`source.image: got ${JSON.stringify(source.image)}, expected an image name without tag or digest`)
  }
  if (!Number.isInteger(spec.replicas) || spec.replicas < 0) problems.push(`spec.replicas: got ${spec.replicas}, expected an integer >= 0`)
  for (const p of spec.ports) if (!Number.isInteger(p) || p < 1 || p > 65535) problems.push(`spec.ports: got ${p}, expected 1..65535`)
  if (!Number.isInteger(spec.gpu.count) || spec.gpu.count < 0) problems.push(`spec.gpu.count: got ${spec.gpu.count}, expected an integer >= 0`)
  for (const k of Object.keys(req.env ?? {})) if (!envKeyRe.test(k)) problems.push(`env: key ${JSON.stringify(k)} does not match ${envKeyRe}`)
  const healthPath = req.healthPath ?? '/'
  if (!healthPath.startsWith('/')) problems.push(`healthPath: got ${JSON.stringify(healthPath)}, expected a path starting with "/"`)
  if (problems.length || source.kind !== 'container') throw malformed(`deployment ${req.deploymentId} cannot run on Kubernetes`, problems)

  const ns = namespaceOf(req.deploymentId)
  const labels = ownershipLabels(o.operatorId, req.deploymentId)
  const persistent = (o.storage ?? 'persistent') === 'persistent' && spec.storageGiB > 0
  const kind: WorkloadKind = persistent ? 'StatefulSet' : 'Deployment'
  const ports = [...new Set(spec.ports)].sort((a, b) => a - b)
  const firstPort = ports[0]

  const requests: Record<string, string> = { cpu: cpuQuantity(spec.vcpu), memory: gibQuantity(spec.memoryGiB) }
  if (!persistent && spec.storageGiB > 0) requests['ephemeral-storage'] = gibQuantity(spec.storageGiB)
  if (spec.gpu.count > 0) requests['nvidia.com/gpu'] = String(spec.gpu.count)

  const env: V1EnvVar[] = [
    { name: 'DEPLOYMENT_ID', value: req.deploymentId },
    { name: 'SERVICE_ID', value: req.serviceId },
    { name: 'BLUEPRINT_ID', value: req.blueprintId },
  ]
  if (firstPort !== undefined) env.push({ name: 'PORT', value: String(firstPort) }, { name: 'PORTS', value: ports.join(',') })
  env.push({ name: 'HOST', value: '0.0.0.0' })
  if (persistent) {
    env.push({ name: 'DATA_DIR', value: dataMountPath })
    // a StatefulSet pod's ordinal, through the downward API (label set by Kubernetes 1.28+)
    env.push({ name: 'REPLICA_INDEX', valueFrom: { fieldRef: { fieldPath: "metadata.labels['apps.kubernetes.io/pod-index']" } } })
  }
  for (const [name, value] of Object.entries(req.env ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (!reservedEnv.includes(name)) env.push({ name, value })
  }

  const container: V1Container = {
    name: objectName,
    image: `${source.image}@${source.digest}`,
    imagePullPolicy: 'IfNotPresent',
    env,
    resources: { requests, limits: { ...requests } },
  }
  if (ports.length) container.ports = ports.map((p) => ({ name: `p${p}`, containerPort: p, protocol: 'TCP' }))
  if (firstPort !== undefined) {
    container.readinessProbe = { httpGet: { path: healthPath, port: firstPort }, periodSeconds: 5, timeoutSeconds: 2, failureThreshold: 3 }
    container.livenessProbe = { httpGet: { path: healthPath, port: firstPort }, initialDelaySeconds: 15, periodSeconds: 10, timeoutSeconds: 2, failureThreshold: 6 }
  }
  if (persistent) container.volumeMounts = [{ name: dataVolumeName, mountPath: dataMountPath }]

  const selector = { [deploymentLabel]: req.deploymentId, 'app.kubernetes.io/name': objectName }
  const template: V1PodTemplateSpec = {
    metadata: { labels: { ...labels, ...selector } },
    spec: { containers: [container], automountServiceAccountToken: false, enableServiceLinks: false },
  }
  const podSpec = template.spec!
  if (spec.gpu.count > 0) {
    podSpec.tolerations = [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }]
    if (spec.gpu.model) {
      podSpec.affinity = {
        nodeAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: {
            nodeSelectorTerms: [{ matchExpressions: [{ key: o.gpuModelLabel ?? 'nvidia.com/gpu.product', operator: 'In', values: [spec.gpu.model] }] }],
          },
        },
      }
    }
  }
  if (spec.highAvailability) {
    podSpec.topologySpreadConstraints = [{ maxSkew: 1, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'ScheduleAnyway', labelSelector: { matchLabels: selector } }]
  }

  const tierMax = o.tiers[spec.tier]?.maxReplicas ?? spec.replicas
  const maxReplicas = Math.max(spec.replicas, spec.maxReplicas >= 1 ? spec.maxReplicas : tierMax)
  const meta = { name: objectName, namespace: ns, labels, annotations: { [maxReplicasAnnotation]: String(maxReplicas), [replicasAnnotation]: String(spec.replicas) } }

  let workload: V1Deployment | V1StatefulSet
  if (persistent) {
    workload = {
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      metadata: meta,
      spec: {
        replicas: spec.replicas,
        serviceName: objectName,
        podManagementPolicy: 'Parallel',
        selector: { matchLabels: selector },
        template,
        persistentVolumeClaimRetentionPolicy: { whenScaled: 'Retain', whenDeleted: 'Retain' },
        volumeClaimTemplates: [
          {
            metadata: { name: dataVolumeName, labels },
            spec: {
              accessModes: ['ReadWriteOnce'],
              resources: { requests: { storage: gibQuantity(spec.storageGiB) } },
              ...(o.storageClass && { storageClassName: o.storageClass }),
            },
          },
        ],
      },
    }
  } else {
    workload = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: meta,
      spec: { replicas: spec.replicas, revisionHistoryLimit: 3, selector: { matchLabels: selector }, template },
    }
  }

  const service: V1Service | undefined = ports.length
    ? {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: objectName, namespace: ns, labels },
        spec: {
          type: o.serviceType ?? 'ClusterIP',
          selector,
          ports: ports.map((p) => ({ name: `p${p}`, port: p, targetPort: p, protocol: 'TCP' })),
        },
      }
    : undefined

  const namespace: V1Namespace = {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: {
      name: ns,
      labels,
      annotations: {
        [workloadKindAnnotation]: kind,
        'blueprint-operator/service-id': req.serviceId,
        'blueprint-operator/blueprint-id': req.blueprintId,
      },
    },
  }

  const hpa = spec.replicas > 0 ? buildHpa(req.deploymentId, o.operatorId, kind, boundsFor(spec.replicas, maxReplicas), o.targetCpuUtilization) : undefined
  return { namespace, kind, workload, service, hpa, replicas: spec.replicas, maxReplicas }
}
