/**
 * The targets this operator buys from, built through the provider factory table (daemon/providers.ts) from the
 * providers configured in the TOML file: own machines (local, SSH hosts, clusters) and enabled clouds.
 */
import type { Common } from '../core/common.js'
import type { Offer } from '../core/offer.js'
import type { Provisioner } from '../provisioners/types.js'
import type { OperatorConfig } from './config.js'
import type { Target, TargetRegistry } from './ports.js'
import { providers, type ProviderContext, type ProviderFactory } from './providers.js'

export type CreateTargetsOptions = { catalogOffers?: () => readonly Offer[]; gridWorkerPath?: string }

export async function createTargets(common: Common, config: OperatorConfig, o: CreateTargetsOptions = {}): Promise<TargetRegistry> {
  const targets: Target[] = []
  const provisioners: Provisioner[] = []
  const ctx: ProviderContext = {
    operatorId: config.operator.id,
    dataDir: config.operator.dataDir,
    healthTimeoutMs: config.deploy.healthTimeoutMs,
    tiers: config.tiers,
    artifactAllowHosts: config.providers.artifactAllowHosts,
    allowTestSources: config.providers.local?.allowTestSources ?? false,
    catalogOffers: o.catalogOffers ?? (() => []),
    ...(o.gridWorkerPath && { gridWorkerPath: o.gridWorkerPath }),
  }
  const sections = config.providers as unknown as Record<string, unknown>
  try {
    for (const [key, factory] of Object.entries(providers) as Array<[string, ProviderFactory]>) {
      const section = sections[key]
      if (section === undefined) continue
      const built = await factory.create(common, section, ctx)
      targets.push(...built.targets)
      provisioners.push(...built.provisioners)
    }
  } catch (err) {
    for (const p of provisioners.reverse()) await p.close().catch(() => undefined)
    throw err
  }
  common.logger.info({ targets: targets.map((t) => t.name) }, 'targets ready')
  return {
    list: () => targets,
    byName: (name) => targets.find((t) => t.name === name),
    provisioners: () => provisioners,
    async close() {
      for (const p of [...provisioners].reverse()) await p.close()
    },
  }
}
