/**
 * A ResourceSpec for tests: one basic replica of 1 vCPU and 1 GiB on port 8080, anywhere; override what matters.
 * `replicas` also sets the autoscaling bounds unless they are given.
 */
import type { ResourceSpec } from '../../core/spec.js'

export function resourceSpec(o: Partial<ResourceSpec> = {}): ResourceSpec {
  const replicas = o.replicas ?? 1
  return {
    vcpu: 1,
    memoryGiB: 1,
    storageGiB: 0,
    gpu: { count: 0 },
    replicas,
    minReplicas: replicas,
    maxReplicas: replicas,
    regions: [],
    spotAllowed: false,
    highAvailability: false,
    ports: [8080],
    tier: 'basic',
    ...o,
  }
}
