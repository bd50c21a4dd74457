/**
 * The provider factory table: every place the daemon can buy capacity registers here once, with its TOML section
 * (schema, defaults and units live beside its provisioner) and a factory that builds its targets. Adding a target
 * is one folder under provisioners/ plus one entry below. The sections are loaded with the table; a provisioner that
 * pulls in a large SDK (Kubernetes, AWS, Hetzner, ThreeFold) is imported only when its provider is configured:
 * loaded together they held ~160 MB of the daemon's memory (module sources, an SDK's wasm heap) that a daemon
 * selling from its own machines never uses.
 */
import { withStableEndpoints } from '../provisioners/balancer/withStableEndpoints.js'
import { join } from 'node:path'
import type { z } from 'zod'
import type { Common } from '../core/common.js'
import type { Decimal } from '../core/money.js'
import type { Offer, ProviderId } from '../core/offer.js'
import type { TierName, TierPolicy } from '../core/spec.js'
import { kubernetesSection } from '../provisioners/kubernetes/config.js'
import { localSection } from '../provisioners/local/config.js'
import { createLocalProvisioner } from '../provisioners/local/createLocalProvisioner.js'
import { sshSection } from '../provisioners/ssh/config.js'
import { createSshProvisionerFromConfig } from '../provisioners/ssh/fromConfig.js'
import { awsEc2SectionSchema } from '../provisioners/aws-ec2/config.js'
import { hetznerSectionSchema } from '../provisioners/hetzner/config.js'
import { resolveSecret } from '../config/secrets.js'
import { usd } from '../core/money.js'
import { threefoldSection, type ThreefoldSection } from '../provisioners/threefold/config.js'
import { BaseError } from '../core/errors.js'
import type { Provisioner } from '../provisioners/types.js'
import type { Target } from './ports.js'

/** What a factory may know of the rest of the config. */
export type ProviderContext = {
  operatorId: string
  dataDir: string
  healthTimeoutMs: number
  tiers: Record<TierName, TierPolicy>
  artifactAllowHosts: readonly string[]
  allowTestSources: boolean
  /** The catalog's offers served now (clouds sell from them); empty without a catalog. */
  catalogOffers(): readonly Offer[]
  /** The grid worker the threefold target forks instead of the shipped one (tests: a fake speaking its protocol). */
  gridWorkerPath?: string
}

export type ProviderFactory<S extends z.ZodType = z.ZodType> = {
  /** The TOML section: `[providers.<key>]`. */
  section: S
  /** Build the targets of this provider (and the provisioners they share). */
  create(common: Common, section: z.output<S>, ctx: ProviderContext): Promise<{ targets: Target[]; provisioners: Provisioner[] }> | { targets: Target[]; provisioners: Provisioner[] }
}

const defineProvider = <S extends z.ZodType>(f: ProviderFactory<S>) => f

/** An own machine or cluster: one fixed offer over a fixed pool (provider "own", priced by the operator's hourly cost). */
export function ownTarget(p: { name: string; provisioner: Provisioner; placement?: string; region: string; vcpu: number; memoryGiB: number; storageGiB: number; hourlyUsd: Decimal; autoscales?: boolean }): Target {
  const offer: Offer = {
    provider: 'own',
    source: 'own-targets',
    fetchedAt: Date.now(),
    gpu: { count: 0 },
    region: p.region,
    instanceType: p.name,
    vcpu: p.vcpu,
    memoryGiB: p.memoryGiB,
    includedStorageGiB: p.storageGiB,
    hourlyUsd: p.hourlyUsd,
  }
  const offers = [offer]
  return {
    name: p.name,
    kind: 'own',
    provider: 'own',
    provisioner: p.provisioner,
    ...(p.placement && { placement: p.placement }),
    sourceKinds: p.provisioner.sourceKinds,
    offersFor: () => offers,
    capacity: { vcpu: p.vcpu, memoryGiB: p.memoryGiB, storageGiB: p.storageGiB },
    ...(p.autoscales && { autoscales: true }),
  }
}

/**
 * A cloud: the catalog's on-demand (and spot) offers of its provider in the regions the operator's account may use,
 * one VM per replica. The filtered array is kept until the catalog changes (select caches its index on it).
 */
export function cloudTarget(p: {
  name: string
  provider: ProviderId
  provisioner: Provisioner
  /** Regions the account may use; empty = every region the catalog has. */
  regions: readonly string[]
  catalogOffers(): readonly Offer[]
  maxInstances?: number
  bootTimeoutMs?: number
  confirmPrice?: Target['confirmPrice']
}): Target {
  let seen: readonly Offer[] | undefined
  let mine: Offer[] = []
  const allowed = new Set(p.regions)
  return {
    name: p.name,
    kind: 'cloud',
    provider: p.provider,
    provisioner: p.provisioner,
    sourceKinds: p.provisioner.sourceKinds,
    offersFor() {
      const all = p.catalogOffers()
      if (all !== seen) {
        seen = all
        mine = all.filter((o) => o.provider === p.provider && (!allowed.size || allowed.has(o.region)))
      }
      return mine
    },
    ...(p.maxInstances !== undefined && { maxInstances: p.maxInstances }),
    ...(p.bootTimeoutMs !== undefined && { bootTimeoutMs: p.bootTimeoutMs }),
    ...(p.confirmPrice && { confirmPrice: p.confirmPrice }),
  }
}

/** The table. Order is the order targets are listed in (and the tie-break between equal prices). */
export const providers = {
  local: defineProvider({
    section: localSection,
    async create(common, local, ctx) {
      if (!local.enabled) return { targets: [], provisioners: [] }
      const prov = createLocalProvisioner(common.child('local'), {
        rootDir: join(ctx.dataDir, 'local'),
        operatorId: ctx.operatorId,
        portRange: local.portRange,
        healthTimeoutMs: ctx.healthTimeoutMs,
        artifactAllowHosts: [...ctx.artifactAllowHosts],
        ...(local.workloadUser && { workloadUser: local.workloadUser }),
        containers: local.containers,
        ...(local.workloadUids && { workloadUids: local.workloadUids }),
      })
      // container sources join sourceKinds once podman was checked (a real container, about a second)
      await prov.detect()
      const t = ownTarget({ name: 'local', provisioner: prov, region: local.region, vcpu: local.vcpu, memoryGiB: local.memoryGiB, storageGiB: local.storageGiB, hourlyUsd: local.hourlyUsd })
      return { targets: [t], provisioners: [prov] }
    },
  }),
  ssh: defineProvider({
    section: sshSection,
    create(common, ssh, ctx) {
      const prov = createSshProvisionerFromConfig(common.child('ssh'), ssh, {
        operatorId: ctx.operatorId,
        stateDir: join(ctx.dataDir, 'ssh'),
        healthTimeoutMs: ctx.healthTimeoutMs,
        allowTestingSources: ctx.allowTestSources,
        artifactAllowHosts: [...ctx.artifactAllowHosts],
      })
      if (!prov) return { targets: [], provisioners: [] }
      // [providers.ssh.endpoint]: a stable endpoint per service, balanced in the daemon over its replicas on the host
      const ep = ssh.endpoint
      const served = ep
        ? withStableEndpoints(common.child('ssh'), prov, { stateDir: join(ctx.dataDir, 'ssh', 'endpoints', `op-${ctx.operatorId}`), operatorId: ctx.operatorId, listenHost: ep.listen, urlHost: ep.public_host ?? ep.listen, portRange: [...ep.port_range] })
        : prov
      const targets = ssh.hosts.map((h) => ownTarget({ name: `ssh:${h.name}`, provisioner: served, placement: h.name, region: h.region, vcpu: h.vcpu, memoryGiB: h.memoryGiB, storageGiB: h.storageGiB, hourlyUsd: h.hourlyUsd }))
      return { targets, provisioners: [served] }
    },
  }),
  kubernetes: defineProvider({
    section: kubernetesSection,
    async create(common, k8s, ctx) {
      if (!k8s.clusters.length) return { targets: [], provisioners: [] }
      const { createKubernetesProvisioner } = await import('../provisioners/kubernetes/createKubernetesProvisioner.js')
      const prov = createKubernetesProvisioner(common.child('kubernetes'), {
        operatorId: ctx.operatorId,
        tiers: ctx.tiers,
        readyTimeoutMs: ctx.healthTimeoutMs,
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
      const targets = k8s.clusters.map((c) => ownTarget({ name: `k8s:${c.name}`, provisioner: prov, placement: c.name, region: c.region, vcpu: c.vcpu, memoryGiB: c.memoryGiB, storageGiB: c.storageGiB, hourlyUsd: c.hourlyUsd, autoscales: true }))
      return { targets, provisioners: [prov] }
    },
  }),
  aws: defineProvider({
    section: awsEc2SectionSchema,
    async create(common, aws, ctx) {
      const { confirmEc2SpotPrice, createAwsEc2Provisioner } = await import('../provisioners/aws-ec2/index.js')
      const prov = createAwsEc2Provisioner(common.child('aws'), aws, {
        operatorId: ctx.operatorId,
        dataDir: ctx.dataDir,
        ssh: { artifactAllowHosts: [...ctx.artifactAllowHosts], healthTimeoutMs: ctx.healthTimeoutMs, allowTestingSources: ctx.allowTestSources },
      })
      const t = cloudTarget({
        name: 'aws',
        provider: 'aws',
        provisioner: prov,
        regions: aws.regions,
        catalogOffers: ctx.catalogOffers,
        maxInstances: aws.max_instances,
        bootTimeoutMs: aws.boot_timeout_ms,
        // EC2 has a live price with the account's credentials for spot (on-demand list prices change rarely)
        async confirmPrice(offer, spot, signal) {
          if (!spot) return undefined
          return usd(await confirmEc2SpotPrice({ client: prov.clientFor(offer.region), instanceType: offer.instanceType, signal, timeoutMs: aws.api_timeout_ms }))
        },
      })
      return { targets: [t], provisioners: [prov] }
    },
  }),
  hetzner: defineProvider({
    section: hetznerSectionSchema,
    async create(common, hz, ctx) {
      const { confirmHetznerPrice, createHetznerProvisioner } = await import('../provisioners/hetzner/index.js')
      const prov = createHetznerProvisioner(common.child('hetzner'), hz, {
        operatorId: ctx.operatorId,
        dataDir: ctx.dataDir,
        ssh: { artifactAllowHosts: [...ctx.artifactAllowHosts], healthTimeoutMs: ctx.healthTimeoutMs, allowTestingSources: ctx.allowTestSources },
      })
      const token = resolveSecret(hz.token)
      const t = cloudTarget({
        name: 'hetzner',
        provider: 'hetzner',
        provisioner: prov,
        regions: hz.locations,
        catalogOffers: ctx.catalogOffers,
        maxInstances: hz.max_instances,
        bootTimeoutMs: hz.boot_timeout_ms,
        async confirmPrice(offer, _spot, signal) {
          return usd(await confirmHetznerPrice({ token, endpoint: hz.endpoint, serverType: offer.instanceType, location: offer.region, eurUsd: hz.eur_usd, signal, timeoutMs: hz.api_timeout_ms }))
        },
      })
      return { targets: [t], provisioners: [prov] }
    },
  }),
  threefold: defineProvider({
    section: threefoldSection,
    async create(common, tf, ctx) {
      const { createThreefoldFromConfig } = await import('../provisioners/threefold/fromConfig.js')
      if (!tf.enabled) return { targets: [], provisioners: [] }
      await startupTwinCheck(common.child('threefold'), tf)
      const { cachedTftUsd, tftUsdReader } = await import('./tftUsd.js')
      const { tfchainTypesOf } = await import('../provisioners/threefold/fromConfig.js')
      const prov = createThreefoldFromConfig(common.child('threefold'), tf, {
        dataDir: ctx.dataDir,
        allowTestSources: ctx.allowTestSources,
        catalogOffers: ctx.catalogOffers,
        tftUsd: cachedTftUsd(tf.substrateUrl, tftUsdReader(tf.substrateUrl, tfchainTypesOf(tf))),
        ...(ctx.gridWorkerPath && { workerPath: ctx.gridWorkerPath }),
      })
      if (!prov) return { targets: [], provisioners: [] }
      const t = cloudTarget({ name: 'threefold', provider: 'threefold', provisioner: prov, regions: [], catalogOffers: ctx.catalogOffers, maxInstances: tf.maxInstances })
      return { targets: [t], provisioners: [prov] }
    },
  }),
} satisfies Record<string, ProviderFactory>

/**
 * `twin_id` against the mnemonic's twin on TFChain before the grid is offered: a mismatch stops the start-up
 * (GRID_TWIN_MISMATCH); a TFChain that does not answer now is logged, and the grid worker's own init checks again.
 */
async function startupTwinCheck(common: Common, tf: ThreefoldSection): Promise<void> {
  if (!tf.mnemonic || tf.twinId === undefined) return
  const [{ checkTwin }, { tfchainTypesOf }] = await Promise.all([import('../provisioners/threefold/checkTwin.js'), import('../provisioners/threefold/fromConfig.js')])
  const types = tfchainTypesOf(tf)
  try {
    const r = await checkTwin({ url: tf.substrateUrl, mnemonic: tf.mnemonic.reveal(), twinId: tf.twinId, signal: common.signal, ...(types && { types }) })
    common.logger.info({ twinId: r.twinId, account: r.address }, 'the mnemonic is the configured twin')
  } catch (err) {
    if (!(err instanceof BaseError) || !err.retryable) throw err
    common.logger.warn({ err, twinId: tf.twinId }, 'TFChain did not answer the twin check at start-up; the grid worker checks at its init')
  }
}

/** Each provider's section schema, keyed like the table (what `createConfigSchema` composes). */
export const providerSections = Object.fromEntries(Object.entries(providers).map(([k, f]) => [k, f.section])) as { [K in keyof typeof providers]: (typeof providers)[K]['section'] }
