/**
 * Which environment a deployment request may hand to its workload, the same on every target that starts processes
 * through a shell on a host (local, ssh): names the target sets itself, and names that change how the shell or the
 * dynamic loader start the workload (the wrapper that joins cgroups or sources the env file runs with them too).
 */
import { ProvisionError } from './errors.js'

/** Environment keys (as in the Provisioner contract). */
export const ENV_KEY_RE = /^[A-Z_][A-Z0-9_]*$/

/** Names the targets set themselves; a request may not override them (nor anything starting with BPO_). */
export const TARGET_ENV = ['PORT', 'PORTS', 'HOST', 'SERVICE_ID', 'BLUEPRINT_ID', 'DEPLOYMENT_ID', 'REPLICA_INDEX', 'DATA_DIR'] as const

/** Names that change how the host's shell and loader start the workload (and anything starting with LD_). */
export const STARTUP_ENV = ['PATH', 'HOME', 'IFS', 'ENV', 'BASH_ENV', 'SHELLOPTS', 'BASHOPTS', 'PS4', 'CDPATH', 'GCONV_PATH'] as const

/** Longest value accepted, characters. */
export const MAX_ENV_VALUE = 32 * 1024

/** Every problem with a request's env (empty when it is acceptable). */
export function envProblems(env: Record<string, unknown> | undefined): string[] {
  const p: string[] = []
  for (const [k, v] of Object.entries(env ?? {})) {
    if (!ENV_KEY_RE.test(k)) p.push(`env: key ${JSON.stringify(k)} does not match ${ENV_KEY_RE}`)
    else if ((TARGET_ENV as readonly string[]).includes(k) || k.startsWith('BPO_')) p.push(`env: key ${k} is set by the target`)
    else if ((STARTUP_ENV as readonly string[]).includes(k) || k.startsWith('LD_')) p.push(`env: key ${k} would change how the host starts the workload`)
    if (typeof v !== 'string') p.push(`env.${k}: expected a string`)
    else if (v.includes('\0')) p.push(`env.${k}: contains a NUL byte`)
    else if (v.length > MAX_ENV_VALUE) p.push(`env.${k}: longer than ${MAX_ENV_VALUE} characters`)
  }
  return p
}

/** Throw ENV_REFUSED (reason MALFORMED_REQUEST, not retryable) listing every problem of the env. */
export function assertEnvAllowed(env: Record<string, unknown> | undefined): void {
  const p = envProblems(env)
  if (p.length) throw new ProvisionError('deployment env refused', { code: 'ENV_REFUSED', reason: 'MALFORMED_REQUEST', retryable: false, details: p })
}
