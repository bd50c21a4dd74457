/**
 * The operator's TOML file: one schema, defaults and units beside each field, unknown keys rejected. Each section
 * maps its snake_case keys to the camelCase config the daemon reads, so the config's types are derived from the
 * schema (no hand-written mirror). Providers bring their own sections (provisioners/<name>/config.ts), registered in
 * one factory table (daemon/providers.ts) which builds the whole schema with `createConfigSchema`.
 * operator.example.toml documents every key; a test keeps the two in step.
 */
import { z } from 'zod'
import { allowListProblems } from '../core/allowList.js'
import { usd } from '../core/money.js'
import type { Ceilings, OperatorDefaults, TierName, TierPolicy } from '../core/spec.js'
import { address, decimal, filePath, nonNeg, nonNegInt, name, posInt, secretRef } from './fields.js'

const listen = z.string().regex(/^[^\s:]+:\d{1,5}$/, { error: 'expected host:port such as "127.0.0.1:9464"' })

const tier = z
  .strictObject({
    /** Replicas while active (autoscaling minimum: what is paid for). */
    min_replicas: posInt('replica count'),
    /** Autoscaling upper bound. */
    max_replicas: posInt('replica count'),
    /** Per-replica floors the tier raises (optional). */
    vcpu: nonNeg('vcpu').optional(),
    memory_gib: nonNeg('memory in GiB').optional(),
    gpu_count: nonNegInt('GPU count').optional(),
    /** Replicas the margin check prices the tier at (default: max_replicas where it autoscales). */
    priced_replicas: posInt('replica count').optional(),
  })
  .transform(
    (t): TierPolicy => ({
      minReplicas: t.min_replicas,
      maxReplicas: t.max_replicas,
      ...(t.vcpu !== undefined && { vcpu: t.vcpu }),
      ...(t.memory_gib !== undefined && { memoryGiB: t.memory_gib }),
      ...(t.gpu_count !== undefined && { gpuCount: t.gpu_count }),
      ...(t.priced_replicas !== undefined && { pricedReplicas: t.priced_replicas }),
    }),
  )

const sections = {
  operator: z
    .strictObject({
      /** Ownership label put on every resource this daemon creates. */
      id: name,
      /** State, artifact cache and local deployments live here. */
      data_dir: filePath.default('./.blueprint-operator'),
      /** Refuse new requests (refunded with OPERATOR_DRAINING); keep serving existing ones. */
      draining: z.boolean().default(false),
      /** Closed and refunded services move from the state file to archive.jsonl after this many days. */
      archive_after_days: z.number().positive({ error: 'expected a positive number of days' }).default(30),
    })
    .transform((o) => ({ id: o.id, dataDir: o.data_dir, draining: o.draining, archiveAfterDays: o.archive_after_days })),
  chain: z
    .strictObject({
      // HTTP only: the daemon polls (no subscriptions), and viem's WebSocket client stops reconnecting after one
      // failed attempt, which would strand a daemon whose node was down for a minute
      rpc_url: z.url({ protocol: /^https?$/, error: "expected the node's http(s) JSON-RPC URL (WebSocket endpoints are not used)" }),
      chain_id: posInt('chain id'),
      /** The operator's key, by reference. */
      private_key: secretRef,
      registry: address,
      escrow: address,
      /** Blocks an event must be buried under before it is acted on. */
      confirmations: nonNegInt('confirmation count').default(2),
      poll_interval_ms: posInt('interval in ms').default(2000),
      /** First block to scan when there is no saved cursor (usually the contracts' deploy block). */
      start_block: nonNegInt('block number').default(0),
      /** Largest block range per eth_getLogs call. */
      max_block_range: posInt('block range').default(2000),
      request_timeout_ms: posInt('timeout in ms').default(10_000),
      /** Calls sent together as one JSON-RPC batch (a reconcile pass reads every service); 0 = one request per call. */
      rpc_batch_size: nonNegInt('batch size').max(1000).default(50),
    })
    .transform((c) => ({
      rpcUrl: c.rpc_url,
      chainId: c.chain_id,
      privateKey: c.private_key,
      registry: c.registry,
      escrow: c.escrow,
      confirmations: c.confirmations,
      pollIntervalMs: c.poll_interval_ms,
      startBlock: BigInt(c.start_block),
      maxBlockRange: c.max_block_range,
      requestTimeoutMs: c.request_timeout_ms,
      rpcBatchSize: c.rpc_batch_size,
    })),
  token: z
    .strictObject({
      symbol: z.string().min(1).default('USDC'),
      decimals: nonNegInt('decimal count').max(36).default(6),
      /** USD value of one whole token; a stablecoin is 1. */
      usd_per_token: decimal('a USD rate').default(usd('1')),
    })
    .default({ symbol: 'USDC', decimals: 6, usd_per_token: usd('1') })
    .transform((t) => ({ symbol: t.symbol, decimals: t.decimals, usdPerToken: t.usd_per_token })),
  defaults: z
    .strictObject({
      vcpu: nonNeg('vcpu').default(1),
      memory_gib: nonNeg('memory in GiB').default(1),
      storage_gib: nonNeg('storage in GiB').default(1),
      regions: z.array(z.string().min(1)).default([]),
      spot_allowed: z.boolean().default(false),
    })
    .default({ vcpu: 1, memory_gib: 1, storage_gib: 1, regions: [], spot_allowed: false })
    .transform((d): OperatorDefaults => ({ vcpu: d.vcpu, memoryGiB: d.memory_gib, storageGiB: d.storage_gib, regions: d.regions, spotAllowed: d.spot_allowed })),
  ceilings: z
    .strictObject({
      vcpu: nonNeg('vcpu').default(16),
      memory_gib: nonNeg('memory in GiB').default(64),
      storage_gib: nonNeg('storage in GiB').default(500),
      gpu_count: nonNegInt('GPU count').default(0),
      replicas: posInt('replica count').default(20),
      /** Most the operator will pay per service per hour, USD (all replicas). */
      max_cost_per_hour_usd: decimal('USD per hour').default(usd('10')),
    })
    .default({ vcpu: 16, memory_gib: 64, storage_gib: 500, gpu_count: 0, replicas: 20, max_cost_per_hour_usd: usd('10') })
    .transform((c) => ({ vcpu: c.vcpu, memoryGiB: c.memory_gib, storageGiB: c.storage_gib, gpuCount: c.gpu_count, replicas: c.replicas, maxCostPerHourUsd: c.max_cost_per_hour_usd }) satisfies Ceilings & { maxCostPerHourUsd: unknown }),
  margin: z
    .strictObject({
      /** The customer's hourly price (USD) must be at least this × the capacity's hourly cost; "0" disables. */
      min_price_to_cost: decimal('a ratio').default(usd('1')),
    })
    .default({ min_price_to_cost: usd('1') })
    .transform((m) => ({ minPriceToCost: m.min_price_to_cost })),
  tiers: z
    .strictObject({ basic: tier, standard: tier, premium: tier })
    .default({
      basic: { minReplicas: 1, maxReplicas: 1 },
      standard: { minReplicas: 2, maxReplicas: 5 },
      premium: { minReplicas: 3, maxReplicas: 20 },
    } as never)
    .transform((t): Record<TierName, TierPolicy> => t),
  placement: z
    .strictObject({
      /** "cheapest" (every target and enabled cloud), "preferred" (cheapest within the first of `providers` that can serve), "own" (own targets only). */
      mode: z.enum(['cheapest', 'preferred', 'own']).default('cheapest'),
      /** Providers in order of preference, for mode "preferred" ("own", "aws", "hetzner", ...). */
      providers: z.array(z.string().min(1)).default([]),
      /** Offers tried for one request (failover after capacity/quota/region/price/auth errors) before NO_CAPACITY. */
      max_attempts: posInt('attempt count').default(5),
      /** How long a failed offer, region or provider is skipped, ms. */
      cooldown_ms: posInt('duration in ms').default(600_000),
      /** Catalog prices older than this are confirmed with the provider's live price before buying, ms. */
      confirm_price_older_than_ms: nonNegInt('duration in ms').default(21_600_000),
    })
    .default({ mode: 'cheapest', providers: [], max_attempts: 5, cooldown_ms: 600_000, confirm_price_older_than_ms: 21_600_000 })
    .transform((p) => ({ mode: p.mode, providers: p.providers, maxAttempts: p.max_attempts, cooldownMs: p.cooldown_ms, confirmPriceOlderThanMs: p.confirm_price_older_than_ms, perTarget: 8 })),
  loop: z
    .strictObject({
      interval_ms: posInt('interval in ms').default(30_000),
      /** A service the chain stopped knowing (deep reorg, reset chain) is torn down after this long. */
      vanished_after_ms: posInt('duration in ms').default(600_000),
      /** Services whose payment facts (kept from events) are compared with the escrow per tick, in one read. */
      verify_per_tick: posInt('services per tick').max(2000).default(500),
    })
    .default({ interval_ms: 30_000, vanished_after_ms: 600_000, verify_per_tick: 500 })
    .transform((l) => ({ intervalMs: l.interval_ms, vanishedAfterMs: l.vanished_after_ms, verifyPerTick: l.verify_per_tick })),
  deploy: z
    .strictObject({
      /** Provisioning attempts before a request is rolled back and refunded. */
      attempts: posInt('attempt count').default(3),
      backoff_ms: posInt('backoff in ms').default(2000),
      health_timeout_ms: posInt('timeout in ms').default(60_000),
      /** Deployments provisioned at once. */
      concurrency: posInt('count').default(2),
      /** Failed health checks in a row before a restart, and restarts before a replacement. */
      unhealthy_ticks_before_restart: posInt('count').default(2),
    })
    .default({ attempts: 3, backoff_ms: 2000, health_timeout_ms: 60_000, concurrency: 2, unhealthy_ticks_before_restart: 2 })
    .transform((d) => ({ attempts: d.attempts, backoffMs: d.backoff_ms, healthTimeoutMs: d.health_timeout_ms, concurrency: d.concurrency, unhealthyTicksBeforeRestart: d.unhealthy_ticks_before_restart })),
  http: z
    .strictObject({
      enabled: z.boolean().default(true),
      listen: listen.default('127.0.0.1:9464'),
      /** Bearer token of the operator actions (restart, stop, drain), by reference; without it they are disabled. */
      admin_token: secretRef.optional(),
    })
    .default({ enabled: true, listen: '127.0.0.1:9464' })
    .transform((h) => ({
      enabled: h.enabled,
      host: h.listen.slice(0, h.listen.lastIndexOf(':')),
      port: Number(h.listen.slice(h.listen.lastIndexOf(':') + 1)),
      ...(h.admin_token && { adminToken: h.admin_token }),
    })),
  notifications: z
    .strictObject({
      /** Each service stage change POSTed as JSON, signed `X-Blueprint-Signature: sha256=<HMAC-SHA256 of the body>`. */
      webhooks: z
        .array(
          z
            .strictObject({
              url: z.url({ protocol: /^https?$/, error: 'expected an http(s) URL' }),
              /** HMAC key, by reference. */
              secret: secretRef,
              /** Stages to send (the state a service moved to); empty = every stage change. */
              events: z.array(z.enum(['requested', 'provisioning', 'active', 'scaled-to-zero', 'terminating', 'closed', 'refunding', 'refunded'])).default([]),
              timeout_ms: posInt('timeout in ms').default(10_000),
            })
            .transform((w) => ({ url: w.url, secret: w.secret, events: [...w.events] as string[], timeoutMs: w.timeout_ms })),
        )
        .default([]),
    })
    .default({ webhooks: [] }),
  log: z
    .strictObject({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') })
    .default({ level: 'info' }),
  pricing: z
    .strictObject({
      /** Public price sources the catalog refreshes (see README: pricing). */
      sources: z.array(z.string().min(1)).default([]),
      /** Default: <data_dir>/pricing. */
      cache_dir: filePath.optional(),
      eur_usd: decimal('a EUR→USD rate').default(usd('1.08')),
      /** A TFChain node (ws:// or wss://) read for TFT/USD, one of the ThreeFold rate's samples. */
      tfchain_url: z.url({ protocol: /^wss?$/, error: 'expected a ws:// or wss:// URL of a TFChain node' }).optional(),
      /** polkadot.js type definitions (JSON file) for TFChain runtimes whose metadata has no type info (v12). */
      tfchain_types: filePath.optional(),
      /** TFChain pricing policy (`tfgridModule.pricingPolicies`) the ThreeFold offers are priced with when `tfchain_url` is set. */
      tfchain_pricing_policy: posInt('pricing policy id').default(1),
    })
    .default({ sources: [], eur_usd: usd('1.08'), tfchain_pricing_policy: 1 }),
}

/** Shared settings of every provider (`[providers]`), beside the providers' own sections. */
export const providersCommon = {
  /**
   * Artifact hosts downloads may reach although they are loopback, private, link-local, CGNAT or reserved
   * (host names, addresses or CIDRs); everything else must resolve to public addresses only.
   */
  artifact_allow_hosts: z.array(z.string().refine((e) => allowListProblems([e]).length === 0, { error: 'expected a host name, an address or a CIDR' })).default([]),
}

/**
 * The whole schema, given the providers' sections (each optional in the TOML). Cross-section rules live in the
 * final check; the output is the OperatorConfig the daemon reads.
 */
export function createConfigSchema<P extends Record<string, z.ZodType>>(providers: P) {
  const providerSections = Object.fromEntries(Object.entries(providers).map(([k, v]) => [k, v.optional()])) as { [K in keyof P]: z.ZodOptional<P[K]> }
  return z
    .strictObject({
      ...sections,
      providers: z.strictObject({ ...providersCommon, ...providerSections }).default({ artifact_allow_hosts: [] } as never),
    })
    .superRefine((c, ctx) => {
      for (const [t, v] of Object.entries(c.tiers)) {
        if (v.minReplicas > v.maxReplicas)
          ctx.addIssue({ code: 'custom', path: ['tiers', t, 'max_replicas'], message: `got ${v.maxReplicas}, expected >= min_replicas (${v.minReplicas})` })
        for (const [k, ck, key] of [['vcpu', 'vcpu', 'vcpu'], ['memoryGiB', 'memoryGiB', 'memory_gib'], ['gpuCount', 'gpuCount', 'gpu_count']] as const) {
          const raise = v[k]
          if (raise !== undefined && raise > c.ceilings[ck]) ctx.addIssue({ code: 'custom', path: ['tiers', t, key], message: `got ${raise}, above ceilings.${key} (${c.ceilings[ck]})` })
        }
      }
      for (const [k, ck] of [['vcpu', 'vcpu'], ['memory_gib', 'memoryGiB'], ['storage_gib', 'storageGiB']] as const) {
        const d = c.defaults[ck]
        if (d > c.ceilings[ck]) ctx.addIssue({ code: 'custom', path: ['defaults', k], message: `got ${d}, above ceilings.${k} (${c.ceilings[ck]})` })
      }
    })
    .transform((c) => ({
      ...c,
      pricing: {
        sources: c.pricing.sources,
        cacheDir: c.pricing.cache_dir ?? `${c.operator.dataDir}/pricing`,
        eurUsd: c.pricing.eur_usd,
        ...(c.pricing.tfchain_url && { tfchainUrl: c.pricing.tfchain_url }),
        ...(c.pricing.tfchain_types && { tfchainTypes: c.pricing.tfchain_types }),
        tfchainPricingPolicy: c.pricing.tfchain_pricing_policy,
      },
      providers: { ...c.providers, artifactAllowHosts: [...(c.providers as { artifact_allow_hosts: string[] }).artifact_allow_hosts] },
    }))
}
