/**
 * Load the operator's TOML file into a validated, frozen OperatorConfig. Every problem is reported at once,
 * each with its TOML path; secrets are resolved from their references and never appear in clear.
 */
import { readFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { parse as parseToml, TomlError } from 'smol-toml'
import type { z } from 'zod'
import { BaseError } from '../core/errors.js'
import { usd, type Decimal } from '../core/money.js'
import type { Ceilings, OperatorDefaults, TierName, TierPolicy } from '../core/spec.js'
import { configSchema, type RawConfig } from './schema.js'
import { isSecretRef, resolveSecret, SecretError, type Secret } from './secrets.js'

export type OperatorConfig = {
  operator: { id: string; dataDir: string; draining: boolean; archiveAfterDays: number }
  chain: {
    rpcUrl: string
    chainId: number
    privateKey: Secret
    registry: `0x${string}`
    escrow: `0x${string}`
    confirmations: number
    pollIntervalMs: number
    startBlock: bigint
    maxBlockRange: number
    requestTimeoutMs: number
    rpcBatchSize: number
  }
  token: { symbol: string; decimals: number; usdPerToken: Decimal }
  defaults: OperatorDefaults
  ceilings: Ceilings & { maxCostPerHourUsd: Decimal }
  margin: { minPriceToCost: Decimal }
  tiers: Record<TierName, TierPolicy>
  loop: { intervalMs: number; vanishedAfterMs: number }
  deploy: { attempts: number; backoffMs: number; healthTimeoutMs: number; concurrency: number; unhealthyTicksBeforeRestart: number }
  http: { enabled: boolean; host: string; port: number }
  log: { level: string }
  providers: {
    /** Non-public artifact hosts (names, addresses, CIDRs) downloads may reach anyway. */
    artifactAllowHosts: string[]
    local?: {
      enabled: boolean
      region: string
      vcpu: number
      memoryGiB: number
      storageGiB: number
      hourlyUsd: Decimal
      portRange: [number, number]
      allowTestSources: boolean
      /** Replicas run as this unprivileged user (the daemon must be root). */
      workloadUser?: string
      /** Each deployment runs as a uid of its own from this range (the daemon must be root). */
      workloadUids?: [number, number]
      /** The operator accepts replicas running as the daemon's uid (see README: isolation). */
      unsafeWorkloadsShareDaemonUid: boolean
    }
    ssh?: {
      hosts: Array<{
        name: string
        address: string
        port: number
        user: string
        privateKey: Secret
        hostKey: string
        vcpu: number
        memoryGiB: number
        storageGiB: number
        hourlyUsd: Decimal
        region: string
        remoteRoot: string
        portRange: [number, number]
        labels: Record<string, string>
        workloadUser?: string
        workloadUids?: [number, number]
      }>
    }
    kubernetes?: {
      storage: 'persistent' | 'ephemeral'
      serviceType: 'ClusterIP' | 'LoadBalancer'
      gpuModelLabel: string
      clusters: Array<{
        name: string
        kubeconfig: string
        context?: string
        region: string
        storageClass?: string
        vcpu: number
        memoryGiB: number
        storageGiB: number
        hourlyUsd: Decimal
      }>
    }
  }
  pricing: { sources: string[]; cacheDir: string; eurUsd: Decimal; tfchainUrl?: string; tfchainTypes?: string; tfchainPricingPolicy?: number }
}

export type ConfigProblem = { path: string; message: string }

export class ConfigError extends BaseError {
  override name = 'ConfigError'
  readonly problems: ConfigProblem[]
  constructor(file: string, problems: ConfigProblem[]) {
    super(`${file}: ${problems.length} problem${problems.length === 1 ? '' : 's'} in the configuration`, {
      code: 'CONFIG_INVALID',
      retryable: false,
      details: problems.map((p) => `${p.path || '(top level)'}: ${p.message}`),
    })
    this.problems = problems
  }
}

const pathOf = (p: readonly PropertyKey[]) =>
  p.reduce<string>((acc, k) => (typeof k === 'number' ? `${acc}[${k}]` : acc ? `${acc}.${String(k)}` : String(k)), '')

function describe(issue: z.core.$ZodIssue, input: unknown): ConfigProblem[] {
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((k) => ({ path: pathOf([...issue.path, k]), message: 'unknown key' }))
  }
  let got: unknown = input
  for (const k of issue.path) got = got && typeof got === 'object' ? (got as Record<PropertyKey, unknown>)[k as string] : undefined
  const shown = got === undefined ? 'nothing' : JSON.stringify(got)
  let msg = issue.message
  if (issue.code === 'invalid_type' && got === undefined) msg = `missing, ${issue.expected === 'object' ? 'expected a table' : `expected a ${issue.expected}`}`
  else if (!/^got /.test(msg)) msg = `got ${shown && shown.length > 80 ? `${shown.slice(0, 77)}...` : shown}, ${msg.replace(/^Invalid input: /, '')}`
  // never echo a literal that was meant to be a secret
  if (/secret|private_key/.test(pathOf(issue.path))) msg = msg.replace(/^got .*?, /, 'got a literal value, ')
  return [{ path: pathOf(issue.path), message: msg }]
}

/** `baseDir` anchors relative paths and file: secrets (default: the file's folder, else the working directory). */
export type LoadConfigOptions = { env?: NodeJS.ProcessEnv; file?: string; baseDir?: string }

/** Validate an already-parsed TOML document. `file` names it in errors and anchors relative paths. */
export function parseConfig(doc: unknown, o: LoadConfigOptions = {}): OperatorConfig {
  const file = o.file ?? '<config>'
  const baseDir = o.baseDir ?? (o.file ? dirname(resolve(o.file)) : process.cwd())
  const r = configSchema.safeParse(doc)
  const problems: ConfigProblem[] = []
  if (!r.success) {
    for (const issue of r.error.issues) problems.push(...describe(issue, doc))
    throw new ConfigError(file, problems)
  }
  const c: RawConfig = r.data
  const secret = (path: string, ref: string): Secret => {
    try {
      return resolveSecret(ref, o.env ?? process.env, baseDir)
    } catch (err) {
      problems.push({ path, message: err instanceof SecretError ? err.shortMessage : 'cannot resolve secret' })
      return undefined as unknown as Secret
    }
  }
  const privateKey = secret('chain.private_key', c.chain.private_key)
  // a URL given by reference is resolved here and checked like a literal one (its value is never echoed)
  const urlOf = (path: string, raw: string, protocols: RegExp, expected: string): string => {
    if (!isSecretRef(raw)) return raw
    const value = secret(path, raw)?.reveal()
    if (value === undefined) return ''
    let ok = false
    try {
      ok = protocols.test(new URL(value).protocol.replace(/:$/, ''))
    } catch {
      ok = false
    }
    if (!ok) problems.push({ path, message: `the value of ${raw} is not ${expected}` })
    return value
  }
  const rpcUrl = urlOf('chain.rpc_url', c.chain.rpc_url, /^https?$/, "the node's http(s) JSON-RPC URL")
  const tfchainUrl = c.pricing.tfchain_url === undefined ? undefined : urlOf('pricing.tfchain_url', c.pricing.tfchain_url, /^wss?$/, 'a ws:// or wss:// URL')
  const hosts = (c.providers.ssh?.hosts ?? []).map((h, i) => ({
    name: h.name,
    address: h.address,
    port: h.port,
    user: h.user,
    privateKey: secret(`providers.ssh.hosts[${i}].private_key`, h.private_key),
    hostKey: h.host_key,
    vcpu: h.vcpu,
    memoryGiB: h.memory_gib,
    storageGiB: h.storage_gib,
    hourlyUsd: usd(h.hourly_usd),
    region: h.region,
    remoteRoot: h.remote_root,
    portRange: h.port_range,
    labels: h.labels,
    ...(h.workload_user && { workloadUser: h.workload_user }),
    ...(h.workload_uids && { workloadUids: h.workload_uids }),
  }))
  if (problems.length) throw new ConfigError(file, problems)
  const [host, port] = [c.http.listen.slice(0, c.http.listen.lastIndexOf(':')), Number(c.http.listen.slice(c.http.listen.lastIndexOf(':') + 1))]
  const dataDir = resolve(baseDir, c.operator.data_dir)
  const cfg: OperatorConfig = {
    operator: { id: c.operator.id, dataDir, draining: c.operator.draining, archiveAfterDays: c.operator.archive_after_days },
    chain: {
      rpcUrl,
      chainId: c.chain.chain_id,
      privateKey,
      registry: c.chain.registry as `0x${string}`,
      escrow: c.chain.escrow as `0x${string}`,
      confirmations: c.chain.confirmations,
      pollIntervalMs: c.chain.poll_interval_ms,
      startBlock: BigInt(c.chain.start_block),
      maxBlockRange: c.chain.max_block_range,
      requestTimeoutMs: c.chain.request_timeout_ms,
      rpcBatchSize: c.chain.rpc_batch_size,
    },
    token: { symbol: c.token.symbol, decimals: c.token.decimals, usdPerToken: usd(c.token.usd_per_token) },
    defaults: {
      vcpu: c.defaults.vcpu,
      memoryGiB: c.defaults.memory_gib,
      storageGiB: c.defaults.storage_gib,
      regions: c.defaults.regions,
      spotAllowed: c.defaults.spot_allowed,
    },
    ceilings: {
      vcpu: c.ceilings.vcpu,
      memoryGiB: c.ceilings.memory_gib,
      storageGiB: c.ceilings.storage_gib,
      gpuCount: c.ceilings.gpu_count,
      replicas: c.ceilings.replicas,
      maxCostPerHourUsd: usd(c.ceilings.max_cost_per_hour_usd),
    },
    margin: { minPriceToCost: usd(c.margin.min_price_to_cost) },
    tiers: {
      basic: { minReplicas: c.tiers.basic.min_replicas, maxReplicas: c.tiers.basic.max_replicas },
      standard: { minReplicas: c.tiers.standard.min_replicas, maxReplicas: c.tiers.standard.max_replicas },
      premium: { minReplicas: c.tiers.premium.min_replicas, maxReplicas: c.tiers.premium.max_replicas },
    },
    loop: { intervalMs: c.loop.interval_ms, vanishedAfterMs: c.loop.vanished_after_ms },
    deploy: {
      attempts: c.deploy.attempts,
      backoffMs: c.deploy.backoff_ms,
      healthTimeoutMs: c.deploy.health_timeout_ms,
      concurrency: c.deploy.concurrency,
      unhealthyTicksBeforeRestart: c.deploy.unhealthy_ticks_before_restart,
    },
    http: { enabled: c.http.enabled, host, port },
    log: { level: c.log.level },
    providers: {
      artifactAllowHosts: [...c.providers.artifact_allow_hosts],
      ...(c.providers.local && {
        local: {
          enabled: c.providers.local.enabled,
          region: c.providers.local.region,
          vcpu: c.providers.local.vcpu,
          memoryGiB: c.providers.local.memory_gib,
          storageGiB: c.providers.local.storage_gib,
          hourlyUsd: usd(c.providers.local.hourly_usd),
          portRange: c.providers.local.port_range,
          allowTestSources: c.providers.local.allow_test_sources,
          ...(c.providers.local.workload_user && { workloadUser: c.providers.local.workload_user }),
          ...(c.providers.local.workload_uids && { workloadUids: c.providers.local.workload_uids }),
          unsafeWorkloadsShareDaemonUid: c.providers.local.unsafe_workloads_share_daemon_uid,
        },
      }),
      ...(c.providers.ssh && { ssh: { hosts } }),
      ...(c.providers.kubernetes && {
        kubernetes: {
          storage: c.providers.kubernetes.storage,
          serviceType: c.providers.kubernetes.service_type,
          gpuModelLabel: c.providers.kubernetes.gpu_model_label,
          clusters: c.providers.kubernetes.clusters.map((k) => ({
            name: k.name,
            kubeconfig: resolve(baseDir, k.kubeconfig),
            ...(k.context && { context: k.context }),
            region: k.region,
            ...(k.storage_class && { storageClass: k.storage_class }),
            vcpu: k.vcpu,
            memoryGiB: k.memory_gib,
            storageGiB: k.storage_gib,
            hourlyUsd: usd(k.hourly_usd),
          })),
        },
      }),
    },
    pricing: {
      sources: c.pricing.sources,
      cacheDir: resolve(baseDir, c.pricing.cache_dir ?? `${c.operator.data_dir}/pricing`),
      eurUsd: usd(c.pricing.eur_usd),
      ...(tfchainUrl && { tfchainUrl }),
      ...(c.pricing.tfchain_types && { tfchainTypes: resolve(baseDir, c.pricing.tfchain_types) }),
      tfchainPricingPolicy: c.pricing.tfchain_pricing_policy,
    },
  }
  return deepFreeze(cfg)
}

/** Read, parse and validate a TOML file. Throws ConfigError listing every problem. */
export function loadConfig(file: string, o: Omit<LoadConfigOptions, 'file'> = {}): OperatorConfig {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    throw new ConfigError(file, [{ path: '', message: `cannot read the file (${(err as NodeJS.ErrnoException).code ?? 'error'})` }])
  }
  let doc: unknown
  try {
    doc = parseToml(text)
  } catch (err) {
    if (err instanceof TomlError) throw new ConfigError(file, [{ path: `line ${err.line}, column ${err.column}`, message: err.message.split('\n')[0] ?? 'invalid TOML' }])
    throw err
  }
  return parseConfig(doc, { ...o, file })
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    // Decimal instances are immutable already; freezing them breaks nothing but is unnecessary
    Object.freeze(o)
    for (const v of Object.values(o as object)) deepFreeze(v)
  }
  return o
}
