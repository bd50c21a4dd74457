/**
 * Running podman on the daemon's machine: argument vectors through execFile (no shell), a clean environment (only
 * what podman itself needs: PATH, HOME, XDG_*, CONTAINERS_*, REGISTRY_AUTH_FILE, TMPDIR — never the daemon's
 * secrets), a timeout and an AbortSignal on every call.
 */
import { execFile } from 'node:child_process'
import { AbortedError } from '../../core/errors.js'

export type PodmanResult = { code: number; stdout: string; stderr: string }

export type Podman = {
  /** Path or name of the binary. */
  readonly binary: string
  /** The environment it runs with. */
  readonly env: Readonly<Record<string, string>>
  /** Run `podman <args>`; resolves with the exit code (never rejects on a non-zero exit). */
  exec(args: readonly string[], o?: { signal?: AbortSignal; timeoutMs?: number }): Promise<PodmanResult>
}

export type PodmanParameters = {
  /** Default "podman" (looked up on PATH). */
  binary?: string
  /** The environment podman runs with; default: the pass-through names below from the daemon's own environment. */
  env?: Record<string, string>
  /** Per call, ms. Default 120_000. */
  timeoutMs?: number
}

/** Names of the daemon's environment podman gets (its configuration and rootless runtime dirs), nothing else. */
export const PODMAN_ENV_PASS = ['PATH', 'HOME', 'USER', 'XDG_RUNTIME_DIR', 'XDG_CONFIG_HOME', 'XDG_DATA_HOME', 'CONTAINERS_CONF', 'CONTAINERS_STORAGE_CONF', 'CONTAINERS_REGISTRIES_CONF', 'REGISTRY_AUTH_FILE', 'TMPDIR'] as const

/** The environment podman gets by default: the pass-through names only. */
export function podmanEnv(from: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const env: Record<string, string> = {}
  for (const k of PODMAN_ENV_PASS) {
    const v = from[k]
    if (typeof v === 'string') env[k] = v
  }
  env.PATH ??= '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
  return env
}

/** Create a podman runner. */
export function createPodman(p: PodmanParameters = {}): Podman {
  const binary = p.binary ?? 'podman'
  const env = p.env ?? podmanEnv()
  const defMs = p.timeoutMs ?? 120_000
  return {
    binary,
    env,
    exec(args, o = {}) {
      return new Promise((resolve, reject) => {
        if (o.signal?.aborted) return reject(abortError(binary, args, o.signal))
        execFile(
          binary,
          [...args],
          { env, timeout: o.timeoutMs ?? defMs, killSignal: 'SIGKILL', maxBuffer: 32 * 1024 * 1024, ...(o.signal && { signal: o.signal }) },
          (err, stdout, stderr) => {
            if (err && typeof (err as { code?: unknown }).code !== 'number') {
              // not started, killed by the timeout or aborted: not an answer from podman
              if (o.signal?.aborted) return reject(abortError(binary, args, o.signal))
              const e = err as NodeJS.ErrnoException & { killed?: boolean }
              return resolve({ code: e.code === 'ENOENT' ? 127 : -1, stdout: String(stdout ?? ''), stderr: `${String(stderr ?? '')}${e.killed ? `\n${binary}: timed out` : `\n${e.message}`}` })
            }
            resolve({ code: err ? Number((err as { code: number }).code) : 0, stdout: String(stdout), stderr: String(stderr) })
          },
        )
      })
    },
  }
}

/** The signal's reason when it is one of ours (a TimeoutError from withTimeout), else an AbortedError. */
function abortError(binary: string, args: readonly string[], signal: AbortSignal): Error {
  const r: unknown = signal.reason
  if (r instanceof Error && (r as { code?: unknown }).code !== undefined && (r as { code?: unknown }).code !== 'ABORT_ERR') return r
  return new AbortedError(`${binary} ${args[0] ?? ''}`, r)
}
