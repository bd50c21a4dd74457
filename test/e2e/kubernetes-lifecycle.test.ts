/**
 * The daemon configured with a Kubernetes cluster instead of local processes: a container blueprint (image pinned by
 * digest) goes active on the cluster, scales to zero when its payment runs out, comes back on a top-up, and its
 * namespace is deleted at TTL. The cluster is the fake API server of test/fakes (real wire format, real client).
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { startFakeKubernetesApi, type FakeKubernetesApi } from '../fakes/kubernetes-api.js'
import { startInProcess, startStack, waitFor, type Stack } from '../helpers/stack.js'

const RATE = 1000n
const digest = `sha256:${'ab12'.repeat(16)}`

describe('e2e: lifecycle on a Kubernetes cluster', () => {
  let stack: Stack
  let api: FakeKubernetesApi
  let d: Awaited<ReturnType<typeof startInProcess>>
  beforeAll(async () => {
    api = await startFakeKubernetesApi()
    stack = await startStack({
      extra: {
        providers: {
          local: { enabled: false },
          kubernetes: { service_type: 'LoadBalancer', clusters: [{ name: 'edge', kubeconfig: api.kubeconfigPath, region: 'eu-edge', vcpu: 16, memory_gib: 64, storage_gib: 100, hourly_usd: '0.03' }] },
        },
      },
    })
    d = await startInProcess(stack)
  })
  afterAll(async () => {
    await d?.stop()
    await stack?.stop()
    await api?.close()
  })

  test('default: container by digest → active → zero → top-up → back → TTL → namespace gone', async () => {
    const { chain } = stack
    const blueprintId = await chain.registerBlueprint({
      name: 'echo-container',
      sources: [{ kind: 'container', image: 'registry.example/echo', digest }],
      requirements: { vcpuMilli: 500, memoryMiB: 512, storageGiB: 0, ports: [8080] },
      pricePerHour: [3_600_000n, 7_200_000n, 14_400_000n],
    })
    const { serviceId } = await chain.requestService({ blueprintId, deposit: 60n * RATE, ttlSeconds: 600n })
    const active = await waitFor('active', () => stack.service(serviceId)?.state === 'active' && stack.service(serviceId), 30_000)
    expect(active.quote!.target).toBe('k8s:edge')
    const ns = api.list('namespaces').find((n) => n.metadata.labels?.['blueprint-operator/deployment'] === active.deploymentId)
    expect(ns?.metadata.labels?.['blueprint-operator/owner']).toBe(stack.operatorId)
    const workload = [...api.list('deployments', ns!.metadata.name), ...api.list('statefulsets', ns!.metadata.name)][0]!
    expect(workload.spec.template.spec.containers[0].image).toBe(`registry.example/echo@${digest}`)
    expect(workload.spec.replicas).toBe(1)
    expect(api.get('services', ns!.metadata.name, 'app')!.spec.type).toBe('LoadBalancer') // the operator's [providers.kubernetes] service_type

    await stack.travel(120n)
    await waitFor('scaled-to-zero', () => stack.service(serviceId)?.state === 'scaled-to-zero', 30_000)
    const zero = [...api.list('deployments', ns!.metadata.name), ...api.list('statefulsets', ns!.metadata.name)][0]!
    expect(zero.spec.replicas).toBe(0)

    await chain.customer.mint(4000n * RATE)
    await chain.customer.topUp(serviceId, 4000n * RATE)
    await waitFor('active again', () => {
      const s = stack.service(serviceId)
      return s?.state === 'active' && s.history.some((h) => h.cause === 'top-up')
    }, 30_000)
    expect([...api.list('deployments', ns!.metadata.name), ...api.list('statefulsets', ns!.metadata.name)][0]!.spec.replicas).toBe(1)

    // premium: three replicas and an autoscaler bounded by the tier (3..20)
    await chain.customer.changeTier(serviceId, 2)
    await waitFor('premium', () => stack.service(serviceId)?.replicas === 3, 30_000)
    const hpa = api.get('horizontalpodautoscalers', ns!.metadata.name, 'app')!
    expect([hpa.spec.minReplicas, hpa.spec.maxReplicas]).toEqual([3, 20])

    await stack.travel(700n)
    await waitFor('closed', () => stack.service(serviceId)?.state === 'closed', 30_000)
    await waitFor('namespace deleted', () => !api.get('namespaces', undefined, ns!.metadata.name))
    expect(await d.daemon.targets.byName('k8s:edge')!.provisioner.listOwned()).toEqual([])
    expect((await stack.refunds(serviceId))[0]!.reason).toBe('TTL_REACHED')
  })

  test('error: a native-only blueprint has no feasible offer on a container-only operator', async () => {
    const blueprintId = await stack.registerDemo({ name: 'native-only' })
    const { serviceId } = await stack.chain.requestService({ blueprintId, deposit: 5000n })
    const s = await waitFor('refunded', () => stack.service(serviceId)?.state === 'refunded' && stack.service(serviceId), 30_000)
    expect(s.reason).toBe('NO_FEASIBLE_OFFER')
    expect(s.problems!.join()).toMatch(/k8s:edge runs no native sources/)
  })
})
