/**
 * The targets this operator runs services on (local processes, SSH hosts, Kubernetes clusters), built from the
 * config, each with the offer it makes to the selection (provider "own", priced by the operator's hourly cost).
 */
import { join } from 'node:path'
import type { Common } from '../core/common.js'
import type { Offer } from '../core/offer.js'
import type { OperatorConfig } from '../config/load.js'
import { createKubernetesProvisioner } from '../provisioners/kubernetes/createKubernetesProvisioner.js'
import { createLocalProvisioner } from '../provisioners/local/createLocalProvisioner.js'
import { createSshProvisionerFromConfig } from '../provisioners/ssh/fromConfig.js'
import type { Provisioner } from '../provisioners/types.js'
import type { Target, TargetRegistry } from './ports.js'

export async function createTargets(common: Common, config: OperatorConfig): Promise<TargetRegistry> {
  const targets: Target[] = []
  const provisioners: Provisioner[] = []
  const fetchedAt = Date.now()
  const offer = (o: Omit<Offer, 'provider' | 'source' | 'fetchedAt' | 'gpu'> & { gpu?: Offer['gpu'] }): Offer => ({
    provider: 'own',
    source: 'own-targets',
    fetchedAt,
    gpu: { count: 0 },
    ...o,
  })

  const local = config.providers.local
  if (local?.enabled) {
    const prov = createLocalProvisioner(common.child('local'), {
      rootDir: join(config.operator.dataDir, 'local'),
      operatorId: config.operator.id,
      portRange: local.portRange,
      healthTimeoutMs: config.deploy.healthTimeoutMs,
      artifactAllowHosts: config.providers.artifactAllowHosts,
      ...(local.workloadUser && { workloadUser: local.workloadUser }),
      ...(local.workloadUids && { workloadUids: local.workloadUids }),
    })
    provisioners.push(prov)
    targets.push({
      name: 'local',
      provisioner: prov,
      sourceKinds: prov.sourceKinds,
      hourlyUsd: local.hourlyUsd,
      offer: offer({ region: local.region, instanceType: 'local', vcpu: local.vcpu, memoryGiB: local.memoryGiB, includedStorageGiB: local.storageGiB, hourlyUsd: local.hourlyUsd }),
    })
  }

  const ssh = config.providers.ssh
  const sshProv = createSshProvisionerFromConfig(common.child('ssh'), config)
  if (ssh && sshProv) {
    const prov = sshProv
    provisioners.push(prov)
    for (const h of ssh.hosts) {
      targets.push({
        name: `ssh:${h.name}`,
        provisioner: prov,
        placement: h.name,
        sourceKinds: prov.sourceKinds,
        hourlyUsd: h.hourlyUsd,
        offer: offer({ region: h.region, instanceType: `ssh:${h.name}`, vcpu: h.vcpu, memoryGiB: h.memoryGiB, includedStorageGiB: h.storageGiB, hourlyUsd: h.hourlyUsd }),
      })
    }
  }

  const k8s = config.providers.kubernetes
  if (k8s?.clusters.length) {
    const prov = createKubernetesProvisioner(common.child('kubernetes'), {
      operatorId: config.operator.id,
      tiers: config.tiers,
      readyTimeoutMs: config.deploy.healthTimeoutMs,
      storage: k8s.storage,
      serviceType: k8s.serviceType,
      gpuModelLabel: k8s.gpuModelLabel,
      clusters: k8s.clusters.map((c) => ({
        name: c.name,
        kubeconfigPath: c.kubeconfig,
        ...(c.context && { context: c.context }),
        region: c.region,
        ...(c.storageClass && { storageClass: c.storageClass }),
      })),
    })
    provisioners.push(prov)
    for (const c of k8s.clusters) {
      targets.push({
        name: `k8s:${c.name}`,
        provisioner: prov,
        placement: c.name,
        sourceKinds: prov.sourceKinds,
        hourlyUsd: c.hourlyUsd,
        offer: offer({ region: c.region, instanceType: `k8s:${c.name}`, vcpu: c.vcpu, memoryGiB: c.memoryGiB, includedStorageGiB: c.storageGiB, hourlyUsd: c.hourlyUsd }),
      })
    }
  }

  common.logger.info({ targets: targets.map((t) => t.name) }, 'targets ready')
  return {
    list: () => targets,
    byName: (name) => targets.find((t) => t.name === name),
    provisioners: () => provisioners,
    async close() {
      for (const p of provisioners.reverse()) await p.close()
    },
  }
}
