/**
 * Secrets by reference only: `env:NAME` or `file:PATH`. The resolved value lives in a closure; a Secret prints,
 * serializes and inspects as its reference, so it never reaches a log, an error, the API or the state file.
 */
import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs'
import { inspect } from 'node:util'
import { BaseError } from '../core/errors.js'

export type Secret = {
  /** The reference as written in the TOML file, e.g. "env:OPERATOR_KEY". */
  readonly ref: string
  /** The secret value. Call only where it is used; never log the result. */
  reveal(): string
  toJSON(): string
  toString(): string
}

export class SecretError extends BaseError {
  override name = 'SecretError'
  constructor(message: string, details?: string[]) {
    super(message, { code: 'SECRET_UNRESOLVED', retryable: false, details })
  }
}

const REF = /^(env|file):(.+)$/

/** True when `value` is written as a secret reference. */
export function isSecretRef(value: string): boolean {
  return REF.test(value)
}

/**
 * Resolve a reference now (so a missing variable or unreadable file is a start-up error), keeping the value private.
 */
export function resolveSecret(ref: string, env: NodeJS.ProcessEnv = process.env, baseDir = process.cwd()): Secret {
  const m = REF.exec(ref)
  if (!m) throw new SecretError('a secret must be a reference (env:NAME or file:PATH)')
  const [, kind, name] = m as unknown as [string, 'env' | 'file', string]
  let value: string
  if (kind === 'env') {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new SecretError(`env:${name} is not a valid variable name`)
    const v = env[name]
    if (v === undefined || v === '') throw new SecretError(`environment variable ${name} is not set`)
    value = v
  } else {
    const path = name.startsWith('/') ? name : `${baseDir}/${name}`
    let fd: number
    try {
      fd = openSync(path, 'r')
    } catch (err) {
      throw new SecretError(`cannot read secret file ${name}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`)
    }
    try {
      // the file read is the file checked (one descriptor): a key others can read is not a secret any more
      const mode = fstatSync(fd).mode & 0o777
      if (mode & 0o066) throw new SecretError(`secret file ${name} is readable or writable by its group or others (mode ${mode.toString(8).padStart(4, '0')}): chmod 600 it`)
      value = readFileSync(fd, 'utf8').replace(/\r?\n$/, '')
    } catch (err) {
      if (err instanceof SecretError) throw err
      throw new SecretError(`cannot read secret file ${name}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`)
    } finally {
      closeSync(fd)
    }
    if (!value) throw new SecretError(`secret file ${name} is empty`)
  }
  return makeSecret(ref, value)
}

/** Wrap a value that is already in hand (tests, dev) as a Secret with a descriptive reference. */
export function makeSecret(ref: string, value: string): Secret {
  const s = {
    ref,
    reveal: () => value,
    toJSON: () => ref,
    toString: () => ref,
    [inspect.custom]: () => `Secret(${ref})`,
  }
  return Object.freeze(s)
}
