/**
 * The Kubernetes provisioner against fake API servers (the real @kubernetes/client-node, over https with client
 * certificates): what lands on the wire, tiers, storage, conflicts, invalid objects, several clusters, faults.
 */
import { getEventListeners } from 'node:events'
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest'
import { createTestCommon } from '../../core/common.js'
import { BaseError, isRetryable } from '../../core/errors.js'
import { reduce, type TierName } from '../../core/spec.js'
import { ProvisionError, TargetUnreachableError } from '../../provisioners/errors.js'
import type { Provisioner } from '../../provisioners/types.js'
import { startFakeKubernetesApi, type FakeKubernetesApi } from '../fakes/kubernetes-api.js'
import { containerRequest, deadKubeconfig, digest, provisionerOn, tiers } from './helpers.js'

const { common, shutdown } = createTestCommon()
let fake: FakeKubernetesApi
let k8s: Provisioner
let seq = 0
const newId = () => `k8s-${process.pid}-${++seq}`

async function rejection(p: Promise<unknown>): Promise<BaseError> {
  try {
    await p
  } catch (err) {
    expect(err).toBeInstanceOf(BaseError)
    return err as BaseError
  }
  throw new Error('expected the call to reject, it resolved')
}

beforeAll(async () => {
  // controllers react on the next tick, before the client can send its next request
  fake = await startFakeKubernetesApi({ readyDelayMs: 0 })
  k8s = provisionerOn(common, 'op-1', { 'c1-eu-west': fake })
})
afterEach(() => {
  fake.setAvailability('up')
  fake.setPodsReady(true)
})
afterAll(async () => {
  await k8s?.close()
  await fake?.close()
  await shutdown()
})

describe('manifests on the wire', () => {
  test('default: namespace with ownership labels, Deployment pinned by digest with limits and probes, Service, no HPA on the basic tier', async () => {
    const id = newId()
    const st = await k8s.provision(containerRequest(id, {}, { env: { GREETING: 'hello' } }))
    expect(st).toMatchObject({ exists: true, replicasWanted: 1, replicasReady: 1, healthy: true, placement: `c1-eu-west/${id}` })
    expect(st.endpoints).toEqual([`http://app.${id}.svc:8080`])
    const ns = fake.get('namespaces', undefined, id)!
    expect(ns.metadata.labels).toMatchObject({ 'app.kubernetes.io/managed-by': 'blueprint-operator', 'blueprint-operator/owner': 'op-1', 'blueprint-operator/deployment': id })
    const dep = fake.get('deployments', id, 'app')!
    const c = dep.spec.template.spec.containers[0]
    expect(c.image).toBe(`registry.example/echo@${digest}`)
    expect(c.resources).toEqual({ requests: { cpu: '500m', memory: '1024Mi' }, limits: { cpu: '500m', memory: '1024Mi' } })
    expect(c.readinessProbe.httpGet).toMatchObject({ path: '/healthz', port: 8080 })
    expect(c.env).toEqual(expect.arrayContaining([{ name: 'PORT', value: '8080' }, { name: 'SERVICE_ID', value: '7' }, { name: 'DEPLOYMENT_ID', value: id }, { name: 'GREETING', value: 'hello' }]))
    expect(fake.get('services', id, 'app')!.spec.ports).toEqual([{ name: 'p8080', port: 8080, targetPort: 8080, protocol: 'TCP' }])
    expect(fake.get('horizontalpodautoscalers', id, 'app')).toBeUndefined()
    // every write is a server-side apply by our field manager
    const writes = fake.requests.filter((r) => r.path.includes(`/${id}`) && r.method === 'PATCH')
    expect(writes.length).toBeGreaterThanOrEqual(3)
    for (const w of writes) {
      expect(w.contentType).toBe('application/apply-patch+yaml')
      expect(w.fieldManager).toBe('blueprint-operator')
      expect(w.query).toContain('force=true')
    }
    await k8s.destroy(id)
  })

  test('args: tiers — HPA autoscaling/v2 bounds follow the payment tier (specs reduced with the operator tiers table)', async () => {
    const want: Record<TierName, [number, number] | undefined> = { basic: undefined, standard: [2, 5], premium: [3, 20] }
    for (const tier of ['basic', 'standard', 'premium'] as const) {
      const r = reduce(
        { vcpu: 1, memoryGiB: 1, storageGiB: 0, gpu: { count: 0 }, ports: [8080] },
        {},
        { vcpu: 1, memoryGiB: 1, storageGiB: 0, regions: [], spotAllowed: false },
        { vcpu: 8, memoryGiB: 32, storageGiB: 100, gpuCount: 0, replicas: 20 },
        tier,
        tiers,
      )
      if (!r.ok) throw new Error(r.problems.join('; '))
      const id = newId()
      const st = await k8s.provision(containerRequest(id, r.spec))
      expect(st.replicasReady).toBe(tiers[tier].minReplicas)
      const hpa = fake.get('horizontalpodautoscalers', id, 'app')
      const bounds = want[tier]
      if (!bounds) expect(hpa).toBeUndefined()
      else {
        expect(hpa!.apiVersion).toBe('autoscaling/v2')
        expect([hpa!.spec.minReplicas, hpa!.spec.maxReplicas]).toEqual(bounds)
        expect(hpa!.spec.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'app' })
      }
      await k8s.destroy(id)
    }
  })

  test('args: gpu — nvidia.com/gpu requests and limits, node affinity on the model, toleration', async () => {
    const id = newId()
    await k8s.provision(containerRequest(id, { gpu: { count: 1, model: 'A100' } }))
    const pod = fake.get('deployments', id, 'app')!.spec.template.spec
    expect(pod.containers[0].resources.limits['nvidia.com/gpu']).toBe('1')
    expect(pod.containers[0].resources.requests['nvidia.com/gpu']).toBe('1')
    expect(pod.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions).toEqual([
      { key: 'nvidia.com/gpu.product', operator: 'In', values: ['A100'] },
    ])
    expect(pod.tolerations).toEqual([{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }])
    // server-side apply drops what is no longer applied
    await k8s.provision(containerRequest(id))
    const after = fake.get('deployments', id, 'app')!.spec.template.spec
    expect(after.containers[0].resources.limits['nvidia.com/gpu']).toBeUndefined()
    expect(after.affinity).toBeUndefined()
    expect(after.tolerations).toBeUndefined()
    await k8s.destroy(id)
  })

  test('args: storage — StatefulSet with one PVC per replica; scale(0) removes the HPA and keeps the claims; scaling back restores both', async () => {
    const id = newId()
    const st = await k8s.provision(containerRequest(id, { storageGiB: 2, replicas: 2, maxReplicas: 5, tier: 'standard' }))
    expect(st.replicasReady).toBe(2)
    const sts = fake.get('statefulsets', id, 'app')!
    expect(sts.spec.volumeClaimTemplates[0].spec.resources.requests.storage).toBe('2048Mi')
    expect(sts.spec.template.spec.containers[0].volumeMounts).toEqual([{ name: 'data', mountPath: '/data' }])
    expect(fake.get('deployments', id, 'app')).toBeUndefined()
    const claims = () => fake.list('persistentvolumeclaims', id).map((p) => `${p.metadata.name}:${p.metadata.uid}:${p.status.phase}`).sort()
    const before = claims()
    expect(before.map((c) => c.split(':')[0])).toEqual(['data-app-0', 'data-app-1'])
    expect(fake.get('horizontalpodautoscalers', id, 'app')!.spec).toMatchObject({ minReplicas: 2, maxReplicas: 5 })

    const zero = await k8s.scale(id, 0)
    expect(zero).toMatchObject({ exists: true, replicasWanted: 0, replicasReady: 0, healthy: true, endpoints: [] })
    expect(fake.get('horizontalpodautoscalers', id, 'app')).toBeUndefined()
    expect(fake.get('statefulsets', id, 'app')!.spec.replicas).toBe(0)
    expect(claims()).toEqual(before)

    const back = await k8s.scale(id, 3)
    expect(back).toMatchObject({ replicasWanted: 3, replicasReady: 3, healthy: true })
    // the customer's endpoint is the Service's: one address, the same at 2 replicas and after zero → 3
    expect(st.endpoints).toEqual([`http://app.${id}.svc:8080`])
    expect(back.endpoints).toEqual(st.endpoints)
    expect(fake.get('horizontalpodautoscalers', id, 'app')!.spec).toMatchObject({ minReplicas: 3, maxReplicas: 20, scaleTargetRef: { kind: 'StatefulSet', name: 'app' } })
    expect(claims().slice(0, 2)).toEqual(before)
    expect(claims()).toHaveLength(3)
    // replica changes go through the /scale subresource
    expect(fake.requests.some((r) => r.method === 'PUT' && r.path === `/apis/apps/v1/namespaces/${id}/statefulsets/app/scale` && r.status === 200)).toBe(true)

    // a new kind: dropping the storage turns it into a Deployment and removes the StatefulSet
    await k8s.provision(containerRequest(id))
    expect(fake.get('statefulsets', id, 'app')).toBeUndefined()
    expect(fake.get('deployments', id, 'app')).toBeDefined()
    await k8s.destroy(id)
    expect(fake.list('persistentvolumeclaims', id)).toEqual([])
  })

  test('behavior: scale(n) follows the tier that starts at n replicas (how the daemon changes tiers); a scale back from zero restores the provisioned bounds', async () => {
    const id = newId()
    await k8s.provision(containerRequest(id, { replicas: 2, maxReplicas: 5, tier: 'standard' }))
    const hpa = () => {
      const h = fake.get('horizontalpodautoscalers', id, 'app')
      return h && [h.spec.minReplicas, h.spec.maxReplicas]
    }
    expect(hpa()).toEqual([2, 5])
    expect((await k8s.scale(id, 3)).replicasReady).toBe(3)
    expect(hpa()).toEqual([3, 20])
    expect((await k8s.scale(id, 1)).replicasReady).toBe(1)
    expect(hpa()).toBeUndefined()
    await k8s.scale(id, 0)
    expect(hpa()).toBeUndefined()
    expect((await k8s.scale(id, 2)).replicasReady).toBe(2)
    expect(hpa()).toEqual([2, 5])
    // a tier change through provision: premium, then back to basic — the old HPA must not hold the replicas up
    expect((await k8s.provision(containerRequest(id, { replicas: 3, maxReplicas: 20, tier: 'premium' }))).replicasReady).toBe(3)
    expect(hpa()).toEqual([3, 20])
    const basic = await k8s.provision(containerRequest(id))
    expect(basic).toMatchObject({ replicasWanted: 1, replicasReady: 1, healthy: true })
    expect(hpa()).toBeUndefined()
    await new Promise((r) => setTimeout(r, 50))
    expect(fake.get('deployments', id, 'app')!.spec.replicas).toBe(1)
    await k8s.destroy(id)
  })

  test('behavior: provisioning again changes nothing (same resourceVersions)', async () => {
    const id = newId()
    await k8s.provision(containerRequest(id, { replicas: 2, maxReplicas: 5, tier: 'standard' }))
    const rv = () => ['deployments', 'services', 'horizontalpodautoscalers'].map((r) => fake.get(r as 'services', id, 'app')!.metadata.resourceVersion)
    const before = rv()
    await k8s.provision(containerRequest(id, { replicas: 2, maxReplicas: 5, tier: 'standard' }))
    expect(rv()).toEqual(before)
    await k8s.destroy(id)
  })

  test('behavior: restart patches the pod template annotation and a healthy deployment stays healthy', async () => {
    const id = newId()
    await k8s.provision(containerRequest(id))
    const gen = fake.get('deployments', id, 'app')!.metadata.generation
    const st = await k8s.restart(id)
    expect(st.healthy).toBe(true)
    const dep = fake.get('deployments', id, 'app')!
    expect(Date.parse(dep.spec.template.metadata.annotations['kubectl.kubernetes.io/restartedAt'])).not.toBeNaN()
    expect(dep.metadata.generation).toBe(gen + 1)
    expect(fake.requests.some((r) => r.method === 'PATCH' && r.contentType === 'application/merge-patch+json' && r.path.endsWith(`/${id}/deployments/app`))).toBe(true)
    // a later apply keeps the restart annotation (another operation's field)
    await k8s.provision(containerRequest(id))
    expect(fake.get('deployments', id, 'app')!.spec.template.metadata.annotations['kubectl.kubernetes.io/restartedAt']).toBeDefined()
    await k8s.destroy(id)
  })

  test('args: serviceType LoadBalancer — the endpoint is the load balancer address once the cloud assigns one', async () => {
    const lb = provisionerOn(common, 'op-1', { 'c1-eu-west': fake }, { serviceType: 'LoadBalancer' })
    const id = newId()
    await lb.provision(containerRequest(id, { ports: [8080, 9090] }))
    expect(fake.get('services', id, 'app')!.spec.type).toBe('LoadBalancer')
    await expect.poll(async () => (await lb.status(id)).endpoints, { timeout: 10_000, interval: 20 }).toEqual(['http://203.0.113.10:8080', 'http://203.0.113.10:9090'])
    await lb.destroy(id)
    await lb.close()
  })

  test('behavior: pods that never become ready — provision returns an unhealthy status after the ready timeout', async () => {
    const slow = provisionerOn(common, 'op-1', { 'c1-eu-west': fake }, { readyTimeoutMs: 300 })
    const id = newId()
    fake.setPodsReady(false)
    const st = await slow.provision(containerRequest(id))
    expect(st).toMatchObject({ exists: true, replicasWanted: 1, replicasReady: 0, healthy: false, endpoints: [] })
    fake.setPodsReady(true)
    await expect.poll(async () => (await slow.status(id)).healthy, { timeout: 10_000, interval: 50 }).toBe(true)
    await slow.destroy(id)
    await slow.close()
  })
})

describe('signals', () => {
  test('behavior: many calls with one long-lived signal leave no abort listeners behind on it', async () => {
    const id = newId()
    await k8s.provision(containerRequest(id))
    const daemonLong = new AbortController()
    for (let i = 0; i < 20; i++) await k8s.status(id, { signal: daemonLong.signal })
    expect(getEventListeners(daemonLong.signal, 'abort')).toHaveLength(0)
    await k8s.destroy(id)
  })
})

describe('conflicts and invalid objects', () => {
  test('behavior: 409 Conflict on a stale /scale resourceVersion is re-read and retried', async () => {
    const id = newId()
    await k8s.provision(containerRequest(id))
    // another writer changes the Deployment between our read of /scale and our replace
    fake.beforeNext({ method: 'PUT', path: /\/scale$/ }, () => fake.mutate('deployments', id, 'app', (d) => void (d.metadata.annotations = { ...d.metadata.annotations, other: 'writer' })))
    // 4 replicas: no tier starts there, so no HPA takes part
    const st = await k8s.scale(id, 4)
    expect(st).toMatchObject({ replicasWanted: 4, replicasReady: 4, healthy: true })
    const puts = fake.requests.filter((r) => r.method === 'PUT' && r.path === `/apis/apps/v1/namespaces/${id}/deployments/app/scale`)
    expect(puts.map((r) => r.status)).toEqual([409, 200])
    await k8s.destroy(id)
  })

  test('error: a conflict that never clears is a retryable ProvisionError carrying HTTP 409', async () => {
    const id = newId()
    await k8s.provision(containerRequest(id))
    for (let i = 0; i < 5; i++) fake.beforeNext({ method: 'PUT', path: /\/scale$/ }, () => fake.mutate('deployments', id, 'app', (d) => void (d.metadata.annotations = { ...d.metadata.annotations, n: String(i) })))
    const err = await rejection(k8s.scale(id, 4))
    expect(err).toBeInstanceOf(ProvisionError)
    expect(err.retryable).toBe(true)
    expect(err.meta).toMatchObject({ httpStatus: 409, statusReason: 'Conflict' })
    await k8s.destroy(id)
  })

  test('error: 422 Invalid (an immutable StatefulSet field) is a final ProvisionError with the Status message', async () => {
    const id = newId()
    await k8s.provision(containerRequest(id, { storageGiB: 1 }))
    const err = await rejection(k8s.provision(containerRequest(id, { storageGiB: 4 })))
    expect(err).toBeInstanceOf(ProvisionError)
    expect(err.retryable).toBe(false)
    expect(err.reason).toBe('PROVISION_FAILED')
    expect(err.meta).toMatchObject({ httpStatus: 422, statusReason: 'Invalid' })
    expect(err.shortMessage).toContain('StatefulSet.apps "app" is invalid: spec: Forbidden')
    expect(err.details.join('\n')).toContain('spec: Forbidden')
    await k8s.destroy(id)
  })

  test('error: a malformed request is refused before any API call', async () => {
    const id = newId()
    const before = fake.requests.length
    const err = await rejection(k8s.provision(containerRequest(id, {}, { source: { kind: 'container', image: 'registry.example/echo:latest', digest } })))
    expect(err.reason).toBe('MALFORMED_REQUEST')
    expect(fake.requests.length).toBe(before)
  })
})

describe('ownership', () => {
  test("behavior: listOwned ignores other operators' and unlabelled namespaces; a foreign namespace is never adopted or deleted", async () => {
    const other = provisionerOn(common, 'op-2', { 'c1-eu-west': fake })
    const mine = newId()
    const theirs = newId()
    await k8s.provision(containerRequest(mine))
    await other.provision(containerRequest(theirs))
    fake.seed('namespaces', { metadata: { name: 'team-x', labels: { 'app.kubernetes.io/managed-by': 'blueprint-operator', 'blueprint-operator/owner': 'op-10' } } })
    fake.seed('namespaces', { metadata: { name: 'plain' } })
    const owned = await k8s.listOwned()
    const ids = owned.map((r) => r.id)
    expect(ids).toContain(mine)
    for (const foreign of [theirs, 'team-x', 'plain', 'default', 'kube-system']) expect(ids).not.toContain(foreign)
    for (const r of owned) expect(fake.get('namespaces', undefined, r.id)!.metadata.labels['blueprint-operator/owner']).toBe('op-1')
    expect(owned.find((r) => r.id === mine)).toEqual({ deploymentId: mine, kind: 'namespace', id: mine, placement: 'c1-eu-west' })
    expect(fake.requests.some((r) => r.path === '/api/v1/namespaces' && decodeURIComponent(r.query).includes('blueprint-operator/owner=op-1'))).toBe(true)

    const err = await rejection(k8s.provision(containerRequest(theirs)))
    expect(err).toBeInstanceOf(ProvisionError)
    expect(err.retryable).toBe(false)
    await k8s.destroy(theirs)
    await k8s.destroy('plain')
    expect(fake.get('namespaces', undefined, theirs)).toBeDefined()
    expect(fake.get('namespaces', undefined, 'plain')).toBeDefined()
    expect((await k8s.status(theirs)).exists).toBe(false)
    await other.destroy(theirs)
    await k8s.destroy(mine)
    await other.close()
  })
})

describe('several clusters', () => {
  let eu: FakeKubernetesApi
  let us: FakeKubernetesApi
  beforeAll(async () => {
    ;[eu, us] = await Promise.all([startFakeKubernetesApi(), startFakeKubernetesApi({ tls: false })])
  })
  afterAll(async () => {
    await eu?.close()
    await us?.close()
  })

  test('default: placement by name or region; a fresh instance finds each deployment on its cluster; listOwned spans all', async () => {
    const multi = provisionerOn(common, 'op-1', { 'k-eu-west-1': eu, 'k-us-east-1': us })
    const a = newId()
    const b = newId()
    const c = newId()
    expect((await multi.provision(containerRequest(a, { regions: ['us'] }))).placement).toBe(`k-us-east-1/${a}`)
    expect((await multi.provision(containerRequest(b, { regions: ['us'] }, { placement: 'k-eu-west-1' }))).placement).toBe(`k-eu-west-1/${b}`)
    expect((await multi.provision(containerRequest(c, { regions: ['ap'] }))).placement).toBe(`k-eu-west-1/${c}`)
    expect(us.get('namespaces', undefined, a)).toBeDefined()
    expect(eu.get('namespaces', undefined, a)).toBeUndefined()
    // without a placement, provisioning again adopts it where it is, whatever the regions now say
    expect((await multi.provision(containerRequest(c, { regions: ['us'] }))).placement).toBe(`k-eu-west-1/${c}`)
    expect(us.get('namespaces', undefined, c)).toBeUndefined()
    const fresh = provisionerOn(common, 'op-1', { 'k-eu-west-1': eu, 'k-us-east-1': us })
    expect((await fresh.status(a)).placement).toBe(`k-us-east-1/${a}`)
    expect((await fresh.scale(a, 2)).replicasReady).toBe(2)
    expect(us.get('deployments', a, 'app')!.spec.replicas).toBe(2)
    expect((await fresh.listOwned()).map((r) => `${r.placement}:${r.id}`).sort()).toEqual([`k-eu-west-1:${b}`, `k-eu-west-1:${c}`, `k-us-east-1:${a}`].sort())
    // one cluster down: what lives on the other is still served
    eu.setAvailability('unavailable')
    expect((await fresh.status(a)).healthy).toBe(true)
    const down = await rejection(fresh.status(b))
    expect(down).toBeInstanceOf(TargetUnreachableError)
    eu.setAvailability('up')
    for (const id of [a, b, c]) await fresh.destroy(id)
    expect(await fresh.listOwned()).toEqual([])
    const unknown = await rejection(multi.provision(containerRequest(newId(), {}, { placement: 'nowhere' })))
    expect(unknown.retryable).toBe(false)
    await fresh.close()
    await multi.close()
  })
})

describe('unreachable API servers', () => {
  test('error: connection refused is a retryable TargetUnreachableError', async () => {
    const dead = await deadKubeconfig()
    const p = provisionerOn(common, 'op-1', { dead: dead.path })
    const err = await rejection(p.provision(containerRequest(newId())))
    expect(err).toBeInstanceOf(TargetUnreachableError)
    expect(err.code).toBe('TARGET_UNREACHABLE')
    expect(isRetryable(err)).toBe(true)
    expect(err.details.join(' ')).toContain('ECONNREFUSED')
    await p.close()
    dead.remove()
  })

  test('error: 503, reset connections and a server that never answers are retryable', async () => {
    const p = provisionerOn(common, 'op-1', { 'c1-eu-west': fake }, { requestTimeoutMs: 300 })
    const id = newId()
    await p.provision(containerRequest(id))
    for (const mode of ['unavailable', 'reset', 'hang'] as const) {
      fake.setAvailability(mode)
      const err = await rejection(p.status(id))
      expect({ mode, code: err.code, retryable: isRetryable(err) }).toEqual({ mode, code: 'TARGET_UNREACHABLE', retryable: true })
      if (mode === 'unavailable') expect(err.details.join(' ')).toContain('HTTP 503 ServiceUnavailable')
      if (mode === 'hang') expect(err.walk((e) => e instanceof BaseError && e.code === 'TIMEOUT')).toBeDefined()
    }
    // an abort while the server does not answer ends the call at once, as an abort
    fake.setAvailability('hang')
    const ac = new AbortController()
    const pending = p.status(id, { signal: ac.signal })
    setTimeout(() => ac.abort(new Error('caller gave up')), 20)
    const aborted = await rejection(pending)
    expect({ code: aborted.code, retryable: aborted.retryable }).toEqual({ code: 'ABORTED', retryable: false })
    // the HTTP requests were really cancelled (timeouts and the abort), not left hanging
    await expect.poll(() => fake.hangingRequests(), { timeout: 5_000, interval: 10 }).toBe(0)
    fake.setAvailability('up')
    expect((await p.status(id)).healthy).toBe(true)
    await p.destroy(id)
    await p.close()
  })

  test('error: a kubeconfig that cannot be read is a configuration error at construction', () => {
    expect(() => provisionerOn(common, 'op-1', { broken: '/nonexistent/kubeconfig' })).toThrow(/problem/)
    expect(() => provisionerOn(common, 'bad owner!', { 'c1-eu-west': fake })).toThrow(/operatorId/)
  })
})
