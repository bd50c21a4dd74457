/**
 * Shared setup for the Kubernetes provisioner tests: requests, tiers, and provisioners pointed at fake API servers.
 */
import { createServer } from 'node:net'
import type { Common } from '../../core/common.js'
import type { ResourceSpec, TierName, TierPolicy } from '../../core/spec.js'
import { createKubernetesProvisioner, type KubernetesProvisionerParameters } from '../../provisioners/kubernetes/createKubernetesProvisioner.js'
import type { DeploymentRequest, Provisioner } from '../../provisioners/types.js'
import { kubeconfigFor, testPki, writeKubeconfig } from '../fakes/kubernetes-certs.js'
import type { FakeKubernetesApi } from '../fakes/kubernetes-api.js'
import { resourceSpec } from '../helpers/spec.js'

export const tiers: Record<TierName, TierPolicy> = {
  basic: { minReplicas: 1, maxReplicas: 1 },
  standard: { minReplicas: 2, maxReplicas: 5 },
  premium: { minReplicas: 3, maxReplicas: 20 },
}

export const digest = `sha256:${'0123456789abcdef'.repeat(4)}`

/** A container request; `spec` overrides the defaults (1 replica, 0.5 vCPU, 1 GiB, port 8080, basic tier). */
export function containerRequest(deploymentId: string, spec: Partial<ResourceSpec> = {}, extra: Partial<DeploymentRequest> = {}): DeploymentRequest {
  return {
    deploymentId,
    serviceId: '7',
    blueprintId: '3',
    source: { kind: 'container', image: 'registry.example/echo', digest },
    healthPath: '/healthz',
    spec: resourceSpec({ vcpu: 0.5, ...spec }),
    ...extra,
  }
}

/** Fast timings for a fake API server that answers in milliseconds. */
export const fastTimings = { requestTimeoutMs: 5_000, readyTimeoutMs: 5_000, deleteTimeoutMs: 5_000, pollIntervalMs: 20 } as const

/** A provisioner on the given fake clusters (name -> fake; region = name's suffix after "-", if any). */
export function provisionerOn(
  common: Common,
  operatorId: string,
  fakes: Record<string, FakeKubernetesApi | string>,
  extra: Partial<KubernetesProvisionerParameters> = {},
): Provisioner {
  return createKubernetesProvisioner(common, {
    operatorId,
    clusters: Object.entries(fakes).map(([name, f]) => ({ name, kubeconfigPath: typeof f === 'string' ? f : f.kubeconfigPath, region: name.split('-').slice(1).join('-') || 'own' })),
    tiers,
    ...fastTimings,
    ...extra,
  })
}

/** A kubeconfig for a 127.0.0.1 port where nothing listens (connections are refused). */
export async function deadKubeconfig(): Promise<{ path: string; remove(): void }> {
  const srv = createServer()
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()))
  const port = (srv.address() as { port: number }).port
  await new Promise<void>((r) => srv.close(() => r()))
  return writeKubeconfig(kubeconfigFor(`https://127.0.0.1:${port}`, testPki()))
}
