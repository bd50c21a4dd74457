/**
 * The operator's TOML file: one schema, defaults and units beside each field, unknown keys rejected.
 * operator.example.toml documents every key; a test keeps the two in step.
 */
import { z } from 'zod'
import { allowListProblems } from '../provisioners/artifacts/addressPolicy.js'
import { uidRangeProblems } from '../provisioners/workloadUids.js'
import { isSecretRef } from './secrets.js'

const decimalString = (what: string) =>
  z.string().regex(/^\d+(\.\d+)?$/, { error: `expected ${what} as a decimal string such as "0.25"` })
const secretRef = z.string().refine(isSecretRef, {
  error: 'secrets must be a reference (env:NAME or file:PATH), never a literal value',
})
const address = z.string().regex(/^0x[0-9a-fA-F]{40}$/, { error: 'expected a 0x-prefixed 20-byte hex address' })
const posInt = (what: string) => z.number().int({ error: `expected an integer ${what}` }).positive({ error: `expected a positive ${what}` })
const nonNegInt = (what: string) => z.number().int({ error: `expected an integer ${what}` }).min(0, { error: `expected ${what} >= 0` })
const nonNeg = (what: string) => z.number().min(0, { error: `expected ${what} >= 0` })
const name = z.string().regex(/^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$/, { error: 'expected a lowercase name of letters, digits and dashes (max 40)' })
const listen = z.string().regex(/^[^\s:]+:\d{1,5}$/, { error: 'expected host:port such as "127.0.0.1:9464"' })

/** A range of uids reserved for workloads, inclusive. */
const uidRange = z
  .tuple([z.number().int({ error: 'expected a whole uid' }), z.number().int({ error: 'expected a whole uid' })])
  .refine((r) => uidRangeProblems(r).length === 0, { error: 'expected [min, max] with 1000 <= min <= max <= 2147483646' })

const tier = z.strictObject({
  /** Replicas while active (HPA minimum). */
  min_replicas: posInt('replica count'),
  /** Autoscaling upper bound (HPA maximum). */
  max_replicas: posInt('replica count'),
})

export const configSchema = z
  .strictObject({
    operator: z
      .strictObject({
        /** Ownership label put on every resource this daemon creates. */
        id: name,
        /** State file, artifact cache and local deployments live here. */
        data_dir: z.string().min(1).default('./.blueprint-operator'),
        /** Refuse new requests (refunded with OPERATOR_DRAINING); keep serving existing ones. */
        draining: z.boolean().default(false),
        /** Closed and refunded services move from the state file to archive.jsonl after this many days. */
        archive_after_days: z.number().positive({ error: 'expected a positive number of days' }).default(30),
      }),
    chain: z.strictObject({
      // HTTP only: the daemon polls (no subscriptions), and viem's WebSocket client stops reconnecting after one
      // failed attempt, which would strand a daemon whose node was down for a minute
      // a hosted node's URL usually carries its API key: give it by reference (env:NAME, file:PATH) to keep the key
      // out of the TOML; the resolved value is checked as the same http(s) URL
      rpc_url: z.union([secretRef, z.url({ protocol: /^https?$/, error: "expected the node's http(s) JSON-RPC URL (WebSocket endpoints are not used), or a reference env:NAME / file:PATH holding it" })], { error: "expected the node's http(s) JSON-RPC URL, or a reference env:NAME / file:PATH holding it" }),
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
    }),
    token: z
      .strictObject({
        symbol: z.string().min(1).default('USDC'),
        decimals: nonNegInt('decimal count').max(36).default(6),
        /** USD value of one whole token; a stablecoin is 1. */
        usd_per_token: decimalString('a USD rate').default('1'),
      })
      .default({ symbol: 'USDC', decimals: 6, usd_per_token: '1' }),
    defaults: z
      .strictObject({
        vcpu: nonNeg('vcpu').default(1),
        memory_gib: nonNeg('memory in GiB').default(1),
        storage_gib: nonNeg('storage in GiB').default(1),
        regions: z.array(z.string().min(1)).default([]),
        spot_allowed: z.boolean().default(false),
      })
      .default({ vcpu: 1, memory_gib: 1, storage_gib: 1, regions: [], spot_allowed: false }),
    ceilings: z
      .strictObject({
        vcpu: nonNeg('vcpu').default(16),
        memory_gib: nonNeg('memory in GiB').default(64),
        storage_gib: nonNeg('storage in GiB').default(500),
        gpu_count: nonNegInt('GPU count').default(0),
        replicas: posInt('replica count').default(20),
        /** Most the operator will pay per service per hour, USD (all replicas). */
        max_cost_per_hour_usd: decimalString('USD per hour').default('10'),
      })
      .default({ vcpu: 16, memory_gib: 64, storage_gib: 500, gpu_count: 0, replicas: 20, max_cost_per_hour_usd: '10' }),
    margin: z
      .strictObject({
        /** The customer's hourly price (USD) must be at least this × the capacity's hourly cost; "0" disables. */
        min_price_to_cost: decimalString('a ratio').default('1'),
      })
      .default({ min_price_to_cost: '1' }),
    tiers: z
      .strictObject({ basic: tier, standard: tier, premium: tier })
      .default({
        basic: { min_replicas: 1, max_replicas: 1 },
        standard: { min_replicas: 2, max_replicas: 5 },
        premium: { min_replicas: 3, max_replicas: 20 },
      }),
    loop: z
      .strictObject({
        interval_ms: posInt('interval in ms').default(30_000),
        /** A service the chain stopped knowing (deep reorg, reset chain) is torn down after this long. */
        vanished_after_ms: posInt('duration in ms').default(600_000),
      })
      .default({ interval_ms: 30_000, vanished_after_ms: 600_000 }),
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
      .default({ attempts: 3, backoff_ms: 2000, health_timeout_ms: 60_000, concurrency: 2, unhealthy_ticks_before_restart: 2 }),
    http: z
      .strictObject({ enabled: z.boolean().default(true), listen: listen.default('127.0.0.1:9464') })
      .default({ enabled: true, listen: '127.0.0.1:9464' }),
    log: z
      .strictObject({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') })
      .default({ level: 'info' }),
    providers: z
      .strictObject({
        /**
         * Artifact hosts downloads may reach although they are loopback, private, link-local, CGNAT or reserved
         * (host names, addresses or CIDRs); everything else must resolve to public addresses only.
         */
        artifact_allow_hosts: z.array(z.string().refine((e) => allowListProblems([e]).length === 0, { error: 'expected a host name, an address or a CIDR' })).default([]),
        local: z
          .strictObject({
            enabled: z.boolean().default(true),
            region: z.string().min(1).default('local'),
            vcpu: nonNeg('vcpu').default(2),
            memory_gib: nonNeg('memory in GiB').default(4),
            storage_gib: nonNeg('storage in GiB').default(20),
            /** What running a service here costs the operator, USD per hour per replica. */
            hourly_usd: decimalString('USD per hour').default('0.01'),
            port_range: z.tuple([posInt('port'), posInt('port')]).default([20000, 20999]),
            /** Run blueprints' `testing` sources (development only). */
            allow_test_sources: z.boolean().default(false),
            /**
             * Run replicas as this (existing, unprivileged) user, through setpriv; the daemon must run as root. The
             * workload then cannot rewrite the daemon's state, the artifacts, manifests or logs, nor leave its cgroups.
             */
            workload_user: z.string().regex(/^[a-z_][a-z0-9_-]{0,31}$/, { error: 'expected a POSIX user name' }).optional(),
            /**
             * Run each deployment as a uid of its own from this range (setpriv; no /etc/passwd entry; the daemon must
             * be root). No account of the machine may hold a uid or gid of the range.
             */
            workload_uids: uidRange.optional(),
            /**
             * Let replicas run as the daemon's own uid (no workload_uids, or a daemon that is not root): they can then
             * read its environment, key files, TOML and state. `run` refuses the local target without this or a range.
             */
            unsafe_workloads_share_daemon_uid: z.boolean().default(false),
          })
          .optional(),
        ssh: z
          .strictObject({
            hosts: z.array(
              z.strictObject({
                name,
                address: z.string().min(1),
                port: posInt('port').max(65535).default(22),
                user: z.string().regex(/^[a-z_][a-z0-9_-]*$/, { error: 'expected a POSIX user name' }),
                private_key: secretRef,
                /** Pinned host public key, "ssh-ed25519 AAAA..."; never trusted on first use. */
                host_key: z.string().regex(/^(ssh-ed25519|ecdsa-sha2-nistp\d+|ssh-rsa) [A-Za-z0-9+/=]+/, { error: 'expected a public host key such as "ssh-ed25519 AAAA..."' }),
                vcpu: nonNeg('vcpu'),
                memory_gib: nonNeg('memory in GiB'),
                storage_gib: nonNeg('storage in GiB'),
                hourly_usd: decimalString('USD per hour'),
                region: z.string().min(1).default('own'),
                remote_root: z.string().startsWith('/').default('/var/lib/blueprint-operator'),
                /** Host ports handed to replicas, inclusive. */
                port_range: z.tuple([posInt('port').max(65535), posInt('port').max(65535)]).default([20000, 29999]),
                labels: z.record(z.string(), z.string()).default({}),
                /**
                 * Run native workloads as this (existing, unprivileged) user, through setpriv; needs `user = "root"`.
                 * The workload then cannot rewrite the host agent, the artifacts or its supervisor, nor leave its cgroups.
                 */
                workload_user: z.string().regex(/^[a-z_][a-z0-9_-]{0,31}$/, { error: 'expected a POSIX user name' }).optional(),
                /** Run each native deployment as a uid of its own from this range (setpriv; needs `user = "root"`). */
                workload_uids: uidRange.optional(),
              }),
            ),
          })
          .optional(),
        kubernetes: z
          .strictObject({
            /** "persistent": a StatefulSet with a volume claim when a service asks for storage; "ephemeral": always a Deployment. */
            storage: z.enum(['persistent', 'ephemeral']).default('persistent'),
            /** How services are exposed: "ClusterIP" (inside the cluster) or "LoadBalancer" (an external address). */
            service_type: z.enum(['ClusterIP', 'LoadBalancer']).default('ClusterIP'),
            /** Node label matched against a blueprint's GPU model. */
            gpu_model_label: z.string().min(1).default('nvidia.com/gpu.product'),
            clusters: z.array(
              z.strictObject({
                name,
                /** Path of the kubeconfig file (it holds credentials: keep it readable by the daemon only). */
                kubeconfig: z.string().min(1),
                context: z.string().min(1).optional(),
                region: z.string().min(1).default('own'),
                storage_class: z.string().min(1).optional(),
                /** Capacity offered to customers, and its cost per replica-hour. */
                vcpu: nonNeg('vcpu'),
                memory_gib: nonNeg('memory in GiB'),
                storage_gib: nonNeg('storage in GiB').default(100),
                hourly_usd: decimalString('USD per hour'),
              }),
            ),
          })
          .optional(),
      })
      .default({ artifact_allow_hosts: [] }),
    pricing: z
      .strictObject({
        /** Public price sources the catalog refreshes (see README: pricing). */
        sources: z.array(z.string().min(1)).default([]),
        cache_dir: z.string().min(1).optional(),
        eur_usd: decimalString('a EUR→USD rate').default('1.08'),
        /** A TFChain node (ws:// or wss://) read for TFT/USD, one of the ThreeFold rate's samples. */
        tfchain_url: z.union([secretRef, z.url({ protocol: /^wss?$/, error: 'expected a ws:// or wss:// URL of a TFChain node' })], { error: 'expected a ws:// or wss:// URL of a TFChain node, or a reference env:NAME / file:PATH holding it' }).optional(),
        /** polkadot.js type definitions (JSON file) for TFChain runtimes whose metadata has no type info (v12). */
        tfchain_types: z.string().min(1).optional(),
        /** TFChain pricing policy (`tfgridModule.pricingPolicies`) the ThreeFold offers are priced with when `tfchain_url` is set. */
        tfchain_pricing_policy: posInt('pricing policy id').default(1),
      })
      .default({ sources: [], eur_usd: '1.08', tfchain_pricing_policy: 1 }),
  })
  .superRefine((c, ctx) => {
    for (const [t, v] of Object.entries(c.tiers)) {
      if (v.min_replicas > v.max_replicas)
        ctx.addIssue({ code: 'custom', path: ['tiers', t, 'max_replicas'], message: `got ${v.max_replicas}, expected >= min_replicas (${v.min_replicas})` })
    }
    for (const k of ['vcpu', 'memory_gib', 'storage_gib'] as const) {
      if (c.defaults[k] > c.ceilings[k])
        ctx.addIssue({ code: 'custom', path: ['defaults', k], message: `got ${c.defaults[k]}, above ceilings.${k} (${c.ceilings[k]})` })
    }
    if (c.providers.local?.workload_user && c.providers.local.workload_uids)
      ctx.addIssue({ code: 'custom', path: ['providers', 'local', 'workload_uids'], message: 'workload_user and workload_uids exclude each other' })
    const pr = c.providers.local?.port_range
    if (pr && pr[0] > pr[1]) ctx.addIssue({ code: 'custom', path: ['providers', 'local', 'port_range'], message: `got [${pr.join(', ')}], expected [low, high]` })
    const seen = new Set<string>()
    for (const [i, h] of (c.providers.ssh?.hosts ?? []).entries()) {
      if (h.port_range[0] > h.port_range[1]) ctx.addIssue({ code: 'custom', path: ['providers', 'ssh', 'hosts', i, 'port_range'], message: `got [${h.port_range.join(', ')}], expected [low, high]` })
      if (h.workload_user && h.workload_uids) ctx.addIssue({ code: 'custom', path: ['providers', 'ssh', 'hosts', i, 'workload_uids'], message: 'workload_user and workload_uids exclude each other' })
      if (seen.has(h.name)) ctx.addIssue({ code: 'custom', path: ['providers', 'ssh', 'hosts', i, 'name'], message: `duplicate host name ${JSON.stringify(h.name)}` })
      seen.add(h.name)
    }
    const cl = new Set<string>()
    for (const [i, k] of (c.providers.kubernetes?.clusters ?? []).entries()) {
      if (cl.has(k.name)) ctx.addIssue({ code: 'custom', path: ['providers', 'kubernetes', 'clusters', i, 'name'], message: `duplicate cluster name ${JSON.stringify(k.name)}` })
      cl.add(k.name)
    }
  })

export type RawConfig = z.output<typeof configSchema>
