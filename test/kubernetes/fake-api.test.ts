/**
 * The fake Kubernetes API server speaks the recorded wire format: checked with the real client and raw requests.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { request as httpRequest } from 'node:http'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { ApiException, AppsV1Api, CoreV1Api, KubeConfig } from '@kubernetes/client-node'
import { startFakeKubernetesApi, type FakeKubernetesApi } from '../fakes/kubernetes-api.js'
import { kubernetesFixturesDir } from '../fakes/kubernetes-certs.js'

const recorded = (name: string) => JSON.parse(readFileSync(join(kubernetesFixturesDir, name), 'utf8'))
const keysOf = (o: object) => Object.keys(o).sort()

let fake: FakeKubernetesApi
let core: CoreV1Api
let apps: AppsV1Api
// plain http variant for raw requests (bearer token auth)
let raw: FakeKubernetesApi

function send(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<{ status: number; body: Record<string, any> }> {
  const u = new URL(raw.url)
  const data = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body)
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: u.hostname, port: u.port, method, path, headers: { authorization: 'Bearer fake-kubernetes-token', ...(data && { 'content-type': contentType }) } },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => {
          expect(res.headers['content-type']).toBe('application/json')
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) })
        })
      },
    )
    req.on('error', reject)
    req.end(data)
  })
}

async function apiError(p: Promise<unknown>): Promise<ApiException<unknown>> {
  try {
    await p
  } catch (err) {
    expect(err).toBeInstanceOf(ApiException)
    return err as ApiException<unknown>
  }
  throw new Error('expected an ApiException')
}

beforeAll(async () => {
  ;[fake, raw] = await Promise.all([startFakeKubernetesApi(), startFakeKubernetesApi({ tls: false })])
  const kc = new KubeConfig()
  kc.loadFromFile(fake.kubeconfigPath)
  core = kc.makeApiClient(CoreV1Api)
  apps = kc.makeApiClient(AppsV1Api)
})
afterAll(async () => {
  await fake?.close()
  await raw?.close()
})

describe('fake Kubernetes API server', () => {
  test('default: serves the recorded cluster content to the real client over https with a client certificate', async () => {
    const ns = await core.readNamespace({ name: 'default' })
    expect(ns.metadata?.uid).toBe(recorded('namespace-get.json').metadata.uid)
    const list = await apps.listDeploymentForAllNamespaces({ labelSelector: 'kubernetes.io/cluster-service=true' })
    expect(list.items.map((d) => d.metadata?.name).sort()).toEqual(['konnectivity-agent-autoscaler', 'kube-dns-autoscaler'])
    const one = await apps.readNamespacedDeployment({ name: 'kube-dns-autoscaler', namespace: 'kube-system' })
    expect(one.spec?.template.spec?.containers[0]?.image).toBe(recorded('deployment-get.gke-item.json').spec.template.spec.containers[0].image)
  })

  test('error: a client without the certificate is refused at the TLS handshake', async () => {
    const res = await fetch(`${fake.url}/api/v1/namespaces`).then(
      () => 'answered',
      (err: Error) => String((err.cause as Error | undefined)?.message ?? err.message),
    )
    expect(res).not.toBe('answered')
  })

  test('error: 404 and 409 Status bodies have the recorded shape', async () => {
    const missing = await apiError(core.readNamespacedService({ name: 'nope', namespace: 'default' }))
    expect(missing.code).toBe(404)
    const body = JSON.parse(missing.body as string)
    expect(keysOf(body)).toEqual(keysOf(recorded('status-404-notfound.json')))
    expect(body).toMatchObject({ kind: 'Status', status: 'Failure', reason: 'NotFound', code: 404, message: 'services "nope" not found', details: { name: 'nope', kind: 'services' } })

    const created = await send('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'wire-a' } })
    expect(created.status).toBe(201)
    expect(created.body.metadata).toMatchObject({ name: 'wire-a', labels: { 'kubernetes.io/metadata.name': 'wire-a' } })
    expect(created.body.metadata.uid).toMatch(/^[0-9a-f-]{36}$/)
    const again = await send('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'wire-a' } })
    expect(again.status).toBe(409)
    expect(keysOf(again.body)).toEqual(keysOf(recorded('status-409-alreadyexists.json')))
    expect(again.body).toMatchObject({ reason: 'AlreadyExists', message: 'namespaces "wire-a" already exists' })
  })

  test('behavior: PUT with a stale resourceVersion is a 409 Conflict; the current one succeeds', async () => {
    const dep = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'web', labels: { a: 'b' } },
      spec: { selector: { matchLabels: { app: 'web' } }, template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'web', image: 'x@sha256:00' }] } } },
    }
    const c = await send('POST', '/apis/apps/v1/namespaces/wire-a/deployments', dep)
    expect(c.status).toBe(201)
    expect(c.body.metadata.generation).toBe(1)
    expect(c.body.spec.strategy.type).toBe('RollingUpdate')
    const rv = c.body.metadata.resourceVersion
    raw.mutate('deployments', 'wire-a', 'web', (d) => void (d.spec.replicas = 4))
    const stale = await send('PUT', '/apis/apps/v1/namespaces/wire-a/deployments/web', { ...dep, metadata: { ...dep.metadata, resourceVersion: rv } })
    expect(stale.status).toBe(409)
    expect(keysOf(stale.body)).toEqual(keysOf(recorded('status-409-conflict.json')))
    expect(stale.body.message).toBe('Operation cannot be fulfilled on deployments.apps "web": the object has been modified; please apply your changes to the latest version and try again')
    // let the fake controller finish its status write for generation 2 (it changes the resourceVersion)
    await expect.poll(() => raw.get('deployments', 'wire-a', 'web')!.status.observedGeneration, { timeout: 5_000, interval: 5 }).toBe(2)
    const cur = raw.get('deployments', 'wire-a', 'web')!
    const ok = await send('PUT', '/apis/apps/v1/namespaces/wire-a/deployments/web', { ...cur, spec: { ...cur.spec, replicas: 2 } })
    expect(ok.status).toBe(200)
    expect(ok.body.metadata.generation).toBe(3)
    const scale = await send('GET', '/apis/apps/v1/namespaces/wire-a/deployments/web/scale')
    expect(keysOf(scale.body)).toEqual(keysOf(recorded('scale-put-response.json')))
    expect(scale.body).toMatchObject({ kind: 'Scale', apiVersion: 'autoscaling/v1', spec: { replicas: 2 }, status: { selector: 'app=web' } })
  })

  test('error: 422 bodies follow the recorded Invalid shape (selector vs template labels, HPA bounds)', async () => {
    const bad = await send('POST', '/apis/apps/v1/namespaces/wire-a/deployments', {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'bad' },
      spec: { selector: { matchLabels: { app: 'x' } }, template: { metadata: { labels: { app: 'y' } }, spec: { containers: [] } } },
    })
    expect(bad.status).toBe(422)
    expect(keysOf(bad.body)).toEqual(keysOf(recorded('status-422-invalid.deployment.json')))
    expect(bad.body.message).toMatch(/^Deployment\.apps "bad" is invalid: \[spec\.template\.metadata\.labels: .*, spec\.template\.spec\.containers: Required value\]$/)
    expect(bad.body.details.causes.map((c: { field: string }) => c.field)).toEqual(['spec.template.metadata.labels', 'spec.template.spec.containers'])
    const hpa = await send('POST', '/apis/autoscaling/v2/namespaces/wire-a/horizontalpodautoscalers', {
      apiVersion: 'autoscaling/v2',
      kind: 'HorizontalPodAutoscaler',
      metadata: { name: 'h' },
      spec: { scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web' }, minReplicas: 0, maxReplicas: 3 },
    })
    expect(hpa.status).toBe(422)
    expect(hpa.body.message).toBe('HorizontalPodAutoscaler.autoscaling "h" is invalid: spec.minReplicas: Invalid value: 0: must be greater than or equal to 1')
  })

  test('behavior: server-side apply needs a field manager, answers a non-forced conflicting apply with 409, and other patch types it does not speak with 415', async () => {
    const path = '/api/v1/namespaces/wire-a/services/svc'
    const svc = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'svc' }, spec: { ports: [{ port: 80 }], selector: { app: 'web' } } }
    expect((await send('PATCH', path, svc, 'application/apply-patch+yaml')).status).toBe(400)
    const created = await send('PATCH', `${path}?fieldManager=one`, svc, 'application/apply-patch+yaml')
    expect(created.status).toBe(201)
    expect(created.body.spec.clusterIP).toMatch(/^10\.96\./)
    expect(created.body.metadata.managedFields[0]).toMatchObject({ manager: 'one', operation: 'Apply' })
    const other = { ...svc, spec: { ...svc.spec, selector: { app: 'other' } } }
    const clash = await send('PATCH', `${path}?fieldManager=two`, other, 'application/apply-patch+yaml')
    expect(clash.status).toBe(409)
    expect(clash.body.details.causes[0]).toMatchObject({ reason: 'FieldManagerConflict', field: '.spec.selector.app' })
    expect((await send('PATCH', `${path}?fieldManager=two&force=true`, other, 'application/apply-patch+yaml')).body.spec.selector).toEqual({ app: 'other' })
    expect((await send('PATCH', path, { metadata: { labels: { x: 'y' } } }, 'application/strategic-merge-patch+json')).status).toBe(415)
    expect((await send('PATCH', path, { metadata: { labels: { x: 'y' } } }, 'application/merge-patch+json')).body.metadata.labels).toEqual({ x: 'y' })
  })

  test('behavior: label selectors on lists; list items carry no kind; a deleted namespace terminates and takes its content along', async () => {
    for (const [name, tier] of [['sel-a', 'gold'], ['sel-b', 'silver'], ['sel-c', undefined]] as const) {
      await send('POST', '/api/v1/namespaces', { metadata: { name, labels: { group: 'sel', ...(tier && { tier }) } } })
    }
    const names = async (sel: string) => (await send('GET', `/api/v1/namespaces?labelSelector=${encodeURIComponent(sel)}`)).body.items.map((i: { metadata: { name: string } }) => i.metadata.name)
    expect(await names('group=sel,tier in (gold,silver)')).toEqual(['sel-a', 'sel-b'])
    expect(await names('group=sel,tier!=gold')).toEqual(['sel-b', 'sel-c'])
    expect(await names('group=sel,!tier')).toEqual(['sel-c'])
    const list = await send('GET', '/api/v1/namespaces?labelSelector=group%3Dsel')
    expect(list.body.kind).toBe('NamespaceList')
    expect(list.body.items[0].kind).toBeUndefined()

    const del = await send('DELETE', '/api/v1/namespaces/wire-a')
    expect(del.status).toBe(200)
    expect(del.body.status.phase).toBe('Terminating')
    const refused = await send('POST', '/api/v1/namespaces/wire-a/services', { metadata: { name: 'late' }, spec: { ports: [{ port: 1 }] } })
    expect(refused.status).toBe(403)
    await expect.poll(() => raw.get('namespaces', undefined, 'wire-a'), { timeout: 5_000, interval: 10 }).toBeUndefined()
    expect(raw.list('deployments', 'wire-a')).toEqual([])
    expect(raw.list('services', 'wire-a')).toEqual([])
  })
})
