import { describe, expect, test } from 'vitest'
import type { V1Deployment, V1StatefulSet } from '@kubernetes/client-node'
import type { ResourceSpec, TierName, TierPolicy } from '../../core/spec.js'
import { ProvisionError } from '../errors.js'
import type { DeploymentRequest } from '../types.js'
import { buildManifests, cpuQuantity, gibQuantity } from './manifests.js'
import { resourceSpec } from '../../test/helpers/spec.js'

const tiers: Record<TierName, TierPolicy> = {
  basic: { minReplicas: 1, maxReplicas: 1 },
  standard: { minReplicas: 2, maxReplicas: 5 },
  premium: { minReplicas: 3, maxReplicas: 20 },
}
const digest = `sha256:${'ab'.repeat(32)}`

function request(spec: Partial<ResourceSpec> = {}, extra: Partial<DeploymentRequest> = {}): DeploymentRequest {
  return {
    deploymentId: 'bp-31337-7',
    serviceId: '7',
    blueprintId: '3',
    source: { kind: 'container', image: 'localhost:5000/echo', digest },
    spec: resourceSpec({ vcpu: 0.5, memoryGiB: 1.5, ...spec }),
    ...extra,
  }
}
const o = { operatorId: 'op-1', tiers }

describe('buildManifests', () => {
  test('default: a Deployment pinned by digest with requests, limits, env, probes, Service and ownership labels', () => {
    const m = buildManifests(request({}, { env: { GREETING: 'hi', PORT: '1' }, healthPath: '/healthz' }), o)
    expect(m.kind).toBe('Deployment')
    const d = m.workload as V1Deployment
    const c = d.spec!.template.spec!.containers[0]!
    expect(c.image).toBe(`localhost:5000/echo@${digest}`)
    expect(c.resources).toEqual({ requests: { cpu: '500m', memory: '1536Mi' }, limits: { cpu: '500m', memory: '1536Mi' } })
    expect(Object.fromEntries(c.env!.map((e) => [e.name, e.value]))).toEqual({
      DEPLOYMENT_ID: 'bp-31337-7',
      SERVICE_ID: '7',
      BLUEPRINT_ID: '3',
      PORT: '8080',
      PORTS: '8080',
      HOST: '0.0.0.0',
      GREETING: 'hi',
    })
    expect(c.readinessProbe!.httpGet).toEqual({ path: '/healthz', port: 8080 })
    expect(c.livenessProbe!.httpGet).toEqual({ path: '/healthz', port: 8080 })
    expect(d.spec!.selector.matchLabels).toEqual({ 'blueprint-operator/deployment': 'bp-31337-7', 'app.kubernetes.io/name': 'app' })
    for (const labels of [m.namespace.metadata!.labels, d.metadata!.labels, m.service!.metadata!.labels]) {
      expect(labels).toEqual({ 'app.kubernetes.io/managed-by': 'blueprint-operator', 'blueprint-operator/owner': 'op-1', 'blueprint-operator/deployment': 'bp-31337-7' })
    }
    expect(m.namespace.metadata!.name).toBe('bp-31337-7')
    expect(m.service!.spec!.ports).toEqual([{ name: 'p8080', port: 8080, targetPort: 8080, protocol: 'TCP' }])
    expect(m.hpa).toBeUndefined()
  })

  test('args: gpu', () => {
    const m = buildManifests(request({ gpu: { count: 2, model: 'A100' } }), o)
    const pod = (m.workload as V1Deployment).spec!.template.spec!
    expect(pod.containers[0]!.resources!.limits!['nvidia.com/gpu']).toBe('2')
    expect(pod.containers[0]!.resources!.requests!['nvidia.com/gpu']).toBe('2')
    expect(pod.affinity!.nodeAffinity!.requiredDuringSchedulingIgnoredDuringExecution!.nodeSelectorTerms[0]!.matchExpressions).toEqual([
      { key: 'nvidia.com/gpu.product', operator: 'In', values: ['A100'] },
    ])
    expect(pod.tolerations).toEqual([{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }])
    const none = buildManifests(request(), o)
    expect((none.workload as V1Deployment).spec!.template.spec!.affinity).toBeUndefined()
  })

  test('args: tier — basic is fixed (no HPA), standard 2..5, premium 3..20', () => {
    expect(buildManifests(request({ tier: 'basic' }), o).hpa).toBeUndefined()
    const std = buildManifests(request({ tier: 'standard', replicas: 2, minReplicas: 2, maxReplicas: 5 }), o)
    expect(std.hpa!.apiVersion).toBe('autoscaling/v2')
    expect(std.hpa!.spec).toMatchObject({ minReplicas: 2, maxReplicas: 5, scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'app' } })
    expect((std.workload as V1Deployment).spec!.replicas).toBe(2)
    // a spec without bounds falls back to the operator's tiers table
    const prem = buildManifests(request({ tier: 'premium', replicas: 3, minReplicas: 0, maxReplicas: 0 }), o)
    expect(prem.hpa!.spec).toMatchObject({ minReplicas: 3, maxReplicas: 20 })
    expect(prem.workload.metadata!.annotations!['blueprint-operator/max-replicas']).toBe('20')
  })

  test('args: storage — StatefulSet with a volume claim template; ephemeral mode keeps a Deployment', () => {
    const m = buildManifests(request({ storageGiB: 10, tier: 'standard', replicas: 2, maxReplicas: 5 }), { ...o, storageClass: 'fast' })
    expect(m.kind).toBe('StatefulSet')
    const s = m.workload as V1StatefulSet
    expect(s.spec!.volumeClaimTemplates![0]!.spec).toEqual({ accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '10240Mi' } }, storageClassName: 'fast' })
    expect(s.spec!.template.spec!.containers[0]!.volumeMounts).toEqual([{ name: 'data', mountPath: '/data' }])
    const env = s.spec!.template.spec!.containers[0]!.env!
    expect(env.find((e) => e.name === 'DATA_DIR')!.value).toBe('/data')
    expect(env.find((e) => e.name === 'REPLICA_INDEX')!.valueFrom).toEqual({ fieldRef: { fieldPath: "metadata.labels['apps.kubernetes.io/pod-index']" } })
    expect(s.spec!.persistentVolumeClaimRetentionPolicy).toEqual({ whenScaled: 'Retain', whenDeleted: 'Retain' })
    expect(m.hpa!.spec!.scaleTargetRef.kind).toBe('StatefulSet')
    expect(m.namespace.metadata!.annotations!['blueprint-operator/workload-kind']).toBe('StatefulSet')
    const eph = buildManifests(request({ storageGiB: 10 }), { ...o, storage: 'ephemeral' })
    expect(eph.kind).toBe('Deployment')
    expect((eph.workload as V1Deployment).spec!.template.spec!.containers[0]!.resources!.limits!['ephemeral-storage']).toBe('10240Mi')
  })

  test('behavior: deterministic (re-applying changes nothing)', () => {
    expect(buildManifests(request({ storageGiB: 5 }, { env: { B: '2', A: '1' } }), o)).toEqual(buildManifests(request({ storageGiB: 5 }, { env: { A: '1', B: '2' } }), o))
  })

  test('behavior: quantities', () => {
    expect(cpuQuantity(0.25)).toBe('250m')
    expect(cpuQuantity(0)).toBe('1m')
    expect(gibQuantity(0.5)).toBe('512Mi')
    expect(gibQuantity(2)).toBe('2048Mi')
  })

  test('error: malformed requests are refused before any API call', () => {
    const bad: DeploymentRequest[] = [
      request({}, { deploymentId: 'Not_DNS' }),
      request({}, { source: { kind: 'container', image: 'localhost:5000/echo:latest', digest } }),
      request({}, { source: { kind: 'container', image: 'echo', digest: 'sha256:short' } }),
      request({}, { source: { kind: 'native', url: 'https://x/y', sha256: 'ab'.repeat(32) } }),
      request({}, { env: { 'bad-key': 'x' } }),
      request({ ports: [70000] }),
    ]
    for (const r of bad) {
      let err: unknown
      try {
        buildManifests(r, o)
      } catch (e) {
        err = e
      }
      expect(err).toBeInstanceOf(ProvisionError)
      expect((err as ProvisionError).reason).toBe('MALFORMED_REQUEST')
      expect((err as ProvisionError).retryable).toBe(false)
    }
  })
})
