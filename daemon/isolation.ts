/**
 * What `run` checks and does before the daemon starts, so that no workload can reach the operator's secrets:
 * the local target must run each deployment as a uid of its own (or the operator opts out explicitly), the TOML file
 * must not be readable by others when it does, the data dir is made traversable but not listable, and the secrets the
 * daemon resolved leave its environment (children are spawned with explicit environments anyway).
 */
import { chmodSync, mkdirSync, statSync } from 'node:fs'
import type { ConfigProblem, OperatorConfig } from './config.js'

export type IsolationCheck = {
  /** Why `run` refuses to start (each with its TOML path). */
  problems: ConfigProblem[]
  /** What the operator accepted or should know. */
  warnings: string[]
}

/** The opt-in key, named in messages. */
export const SHARED_UID_KEY = 'providers.local.unsafe_workloads_share_daemon_uid'

/**
 * Whether the daemon may start with this configuration as uid `uid`: the local target runs each deployment as its
 * own uid (a range and a root daemon), or one unprivileged `workload_user`, or the operator opted in to sharing.
 */
export function checkIsolation(config: OperatorConfig, o: { uid: number; configFile?: string }): IsolationCheck {
  const problems: ConfigProblem[] = []
  const warnings: string[] = []
  const local = config.providers.local
  if (local?.enabled) {
    if (local.workloadUids && o.uid !== 0) {
      problems.push({ path: 'providers.local.workload_uids', message: `switching replicas to their own uid needs the daemon to run as root (it runs as uid ${o.uid})` })
    } else if (local.workloadUids) {
      // a uid per deployment: the TOML must then be unreadable by them (they hold no group of the machine)
      if (o.configFile) {
        const mode = statSync(o.configFile).mode & 0o777
        if (mode & 0o004) problems.push({ path: '(config file)', message: `${o.configFile} is readable by every user (mode ${mode.toString(8)}), workloads included: chmod o-r it` })
      }
    } else if (local.workloadUser) {
      warnings.push(`local replicas all run as ${local.workloadUser}: they cannot read the daemon's secrets, but deployments can read each other's files (set providers.local.workload_uids for a uid per deployment)`)
    } else if (local.unsafeWorkloadsShareDaemonUid) {
      warnings.push(`${SHARED_UID_KEY} = true: local replicas run as the daemon's uid ${o.uid} and can read its environment, key files, TOML and state`)
    } else {
      problems.push({
        path: 'providers.local.workload_uids',
        message:
          `missing: local replicas would run as the daemon's own uid ${o.uid} and could read its environment, key files, TOML and state. ` +
          `Set workload_uids = [min, max] (a range no account uses; the daemon must run as root), or accept the risk with ${SHARED_UID_KEY.split('.').pop()} = true`,
      })
    }
  }
  for (const h of config.providers.ssh?.hosts ?? []) {
    if (!h.workloadUids && !h.workloadUser) warnings.push(`ssh host ${h.name}: native workloads run as the SSH user ${h.user} (set workload_uids for a uid per deployment)`)
  }
  return { problems, warnings }
}

/**
 * Make the data dir traversable but not listable (0711) when workloads run as their own uids: they must reach their
 * data dirs below it, and nothing else (the state and ledgers are 0600).
 */
export function prepareDataDir(config: OperatorConfig): void {
  if (!config.providers.local?.enabled || !config.providers.local.workloadUids) return
  mkdirSync(config.operator.dataDir, { recursive: true, mode: 0o711 })
  chmodSync(config.operator.dataDir, 0o711)
}

/** Every secret value the configuration resolved (keys, and URLs that may carry one). */
export function secretValues(config: OperatorConfig): string[] {
  const out = new Set<string>()
  const visit = (v: unknown, depth: number) => {
    if (!v || typeof v !== 'object' || depth > 8) return
    const s = v as { ref?: unknown; reveal?: unknown }
    if (typeof s.ref === 'string' && typeof s.reveal === 'function') {
      out.add((s.reveal as () => string)())
      return
    }
    for (const x of Object.values(v)) visit(x, depth + 1)
  }
  visit(config, 0)
  out.add(config.chain.rpcUrl)
  if (config.pricing.tfchainUrl) out.add(config.pricing.tfchainUrl)
  return [...out].filter((x) => x.length > 0)
}

/**
 * Remove from `env` every variable holding one of `values` (what `env:` references pointed at, under any name), so
 * nothing spawned later inherits it. Returns the names removed.
 */
export function scrubSecretEnv(values: readonly string[], env: NodeJS.ProcessEnv = process.env): string[] {
  const set = new Set(values)
  const removed: string[] = []
  for (const [k, v] of Object.entries(env)) {
    if (v !== undefined && set.has(v)) {
      delete env[k]
      removed.push(k)
    }
  }
  return removed
}
