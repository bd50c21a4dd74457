/**
 * Errors of the SSH target. Codes (stable): SSH_HOST_KEY_MISMATCH, SSH_AUTH_FAILED, SSH_REMOTE_COMMAND_FAILED,
 * SSH_HOST_UNSUPPORTED. Connection failures are the shared TargetUnreachableError (retryable).
 */
import { ProvisionError } from '../errors.js'

/** The host presented a key other than the pinned one: never retried, never trusted. */
export class HostKeyMismatchError extends ProvisionError {
  override name = 'HostKeyMismatchError'
  constructor(host: string, expectedType: string, presented: string) {
    super(`host key of ${host} does not match the pinned key`, {
      code: 'SSH_HOST_KEY_MISMATCH',
      reason: 'PROVISION_FAILED',
      retryable: false,
      details: [`pinned: ${expectedType} key from the operator's configuration`, `presented: ${presented}`, 'refusing to connect (possible man-in-the-middle or a re-installed host: update the pinned key)'],
      meta: { host },
    })
  }
}

/** The host refused our key. */
export class SshAuthError extends ProvisionError {
  override name = 'SshAuthError'
  constructor(host: string, user: string, cause?: unknown) {
    super(`${user}@${host} refused the configured key`, { code: 'SSH_AUTH_FAILED', reason: 'PROVISION_FAILED', retryable: false, cause, meta: { host, user } })
  }
}

/** A remote command exited non-zero. */
export class RemoteCommandError extends ProvisionError {
  override name = 'RemoteCommandError'
  readonly exitCode: number | null
  constructor(host: string, what: string, exitCode: number | null, stderr: string, retryable = false) {
    const tail = stderr.trim().split('\n').slice(-5).map((l) => l.slice(0, 300))
    super(`${what} failed on ${host} (exit ${exitCode ?? 'signal'})`, { code: 'SSH_REMOTE_COMMAND_FAILED', reason: 'PROVISION_FAILED', retryable, details: tail, meta: { host, exitCode } })
    this.exitCode = exitCode
  }
}

/** The host lacks something the request needs (sha256sum, a container runtime). */
export class HostUnsupportedError extends ProvisionError {
  override name = 'HostUnsupportedError'
  constructor(host: string, missing: string) {
    super(`${host} cannot run this deployment: ${missing}`, { code: 'SSH_HOST_UNSUPPORTED', reason: 'PROVISION_FAILED', retryable: false, meta: { host } })
  }
}
