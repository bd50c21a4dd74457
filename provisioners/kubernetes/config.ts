/** `[providers.kubernetes]`: the operator's clusters, each a fixed pool priced by `hourly_usd`. */
import { z } from 'zod'
import { decimal, filePath, name, nonNeg } from '../../config/fields.js'

const cluster = z
  .strictObject({
    name,
    /** Path of the kubeconfig file (it holds credentials: keep it readable by the daemon only). */
    kubeconfig: filePath,
    context: z.string().min(1).optional(),
    region: z.string().min(1).default('own'),
    storage_class: z.string().min(1).optional(),
    /** Capacity offered to customers, and its cost per replica-hour. */
    vcpu: nonNeg('vcpu'),
    memory_gib: nonNeg('memory in GiB'),
    storage_gib: nonNeg('storage in GiB').default(100),
    hourly_usd: decimal('USD per hour'),
  })
  .transform((k) => ({
    name: k.name,
    kubeconfig: k.kubeconfig,
    ...(k.context && { context: k.context }),
    region: k.region,
    ...(k.storage_class && { storageClass: k.storage_class }),
    vcpu: k.vcpu,
    memoryGiB: k.memory_gib,
    storageGiB: k.storage_gib,
    hourlyUsd: k.hourly_usd,
  }))

export const kubernetesSection = z
  .strictObject({
    /** "persistent": a StatefulSet with a volume claim when a service asks for storage; "ephemeral": always a Deployment. */
    storage: z.enum(['persistent', 'ephemeral']).default('persistent'),
    /** How services are exposed: "ClusterIP" (inside the cluster) or "LoadBalancer" (an external address). */
    service_type: z.enum(['ClusterIP', 'LoadBalancer']).default('ClusterIP'),
    /** Node label matched against a blueprint's GPU model. */
    gpu_model_label: z.string().min(1).default('nvidia.com/gpu.product'),
    clusters: z.array(cluster),
  })
  .superRefine((k, ctx) => {
    const seen = new Set<string>()
    for (const [i, c] of k.clusters.entries()) {
      if (seen.has(c.name)) ctx.addIssue({ code: 'custom', path: ['clusters', i, 'name'], message: `duplicate cluster name ${JSON.stringify(c.name)}` })
      seen.add(c.name)
    }
  })
  .transform((k) => ({ storage: k.storage, serviceType: k.service_type, gpuModelLabel: k.gpu_model_label, clusters: k.clusters }))

export type KubernetesSection = z.output<typeof kubernetesSection>
