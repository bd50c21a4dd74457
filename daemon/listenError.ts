/**
 * A listen address that cannot be bound, said with the TOML key that sets it: a busy `[http] listen` port is worth
 * retrying later (exit 75), an address this machine does not have or may not bind is a configuration problem (exit 1).
 */
import { BaseError } from '../core/errors.js'

/** The HTTP listen address could not be bound. Retryable when it is in use (another process may let it go). */
export class ListenError extends BaseError {
  override name = 'ListenError'
  constructor(key: string, address: string, errno: string | undefined, cause: unknown) {
    const why =
      errno === 'EADDRINUSE'
        ? 'is in use by another process'
        : errno === 'EACCES'
          ? 'needs privileges this daemon does not have'
          : errno === 'EADDRNOTAVAIL'
            ? 'is not an address of this machine'
            : `cannot be bound (${errno ?? 'error'})`
    super(`${key}: ${address} ${why}`, {
      code: errno === 'EADDRINUSE' ? 'LISTEN_BUSY' : 'CONFIG_INVALID',
      retryable: errno === 'EADDRINUSE',
      details: [`change ${key} in the configuration, or stop what holds ${address}`],
      cause,
    })
  }
}

/** Run `listen`; a bind failure becomes a ListenError naming `key` (default `http.listen`) and `address`. */
export async function listenOrExplain<T>(address: string, listen: () => Promise<T>, key = 'http.listen'): Promise<T> {
  try {
    return await listen()
  } catch (err) {
    const errno = (err as NodeJS.ErrnoException).code
    if (typeof errno === 'string' && /^E[A-Z]+$/.test(errno) && (err as NodeJS.ErrnoException).syscall === 'listen') throw new ListenError(key, address, errno, err)
    throw err
  }
}
