/**
 * Field types every TOML section is built from (core sections in schema.ts, each provider's own section beside its
 * provisioner): decimals as Decimal, secrets by reference resolved while parsing (so a missing variable is listed
 * with every other problem), paths anchored at the TOML file's folder.
 */
import { isAbsolute, resolve } from 'node:path'
import { z } from 'zod'
import { usd, type Decimal } from '../core/money.js'
import { redactUrl } from '../core/redact.js'
import { uidRangeProblems } from '../core/workloadUids.js'
import { isSecretRef, resolveSecret, SecretError, type Secret } from './secrets.js'

/** Where the file being parsed lives and which environment secrets come from (set by the loader while it parses). */
export type LoadContext = { env: NodeJS.ProcessEnv; baseDir: string }
let current: LoadContext | undefined

/** Run a synchronous parse with `ctx` as the context of secret and path fields. */
export function withLoadContext<T>(ctx: LoadContext, fn: () => T): T {
  const before = current
  current = ctx
  try {
    return fn()
  } finally {
    current = before
  }
}
const context = (): LoadContext => current ?? { env: process.env, baseDir: process.cwd() }

export const decimalString = (what: string) => z.string().regex(/^\d+(\.\d+)?$/, { error: `expected ${what} as a decimal string such as "0.25"` })
/** A non-negative decimal string such as "0.25", as a Decimal. */
export const decimal = (what: string) => decimalString(what).transform((v): Decimal => usd(v))

/** A secret by reference (`env:NAME`, `file:PATH`), resolved now; its problems are reported with the others. */
export const secretRef = z
  .string()
  .refine(isSecretRef, { error: 'secrets must be a reference (env:NAME or file:PATH), never a literal value' })
  .transform((ref, ctx): Secret => {
    const c = context()
    try {
      return resolveSecret(ref, c.env, c.baseDir)
    } catch (err) {
      ctx.issues.push({ code: 'custom', message: err instanceof SecretError ? err.shortMessage : 'cannot resolve secret', input: ref, params: { secret: true } })
      return z.NEVER
    }
  })

/** A file or folder path; relative ones are anchored at the TOML file's folder. */
export const filePath = z
  .string()
  .min(1)
  .transform((p) => (isAbsolute(p) ? p : resolve(context().baseDir, p)))

export const address = z.string().regex(/^0x[0-9a-fA-F]{40}$/, { error: 'expected a 0x-prefixed 20-byte hex address' }).transform((a) => a as `0x${string}`)
export const posInt = (what: string) => z.number().int({ error: `expected an integer ${what}` }).positive({ error: `expected a positive ${what}` })
export const nonNegInt = (what: string) => z.number().int({ error: `expected an integer ${what}` }).min(0, { error: `expected ${what} >= 0` })
export const nonNeg = (what: string) => z.number().min(0, { error: `expected ${what} >= 0` })
export const name = z.string().regex(/^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$/, { error: 'expected a lowercase name of letters, digits and dashes (max 40)' })
export const posixUser = z.string().regex(/^[a-z_][a-z0-9_-]{0,31}$/, { error: 'expected a POSIX user name' })
export const portRange = z.tuple([posInt('port').max(65535), posInt('port').max(65535)])

/** A range of uids reserved for workloads, inclusive: [min, max], 1000 <= min <= max <= 2^31-2. */
export const uidRange = z
  .tuple([z.number().int({ error: 'expected a whole uid' }), z.number().int({ error: 'expected a whole uid' })])
  .refine((r) => uidRangeProblems(r).length === 0, { error: 'expected [min, max] with 1000 <= min <= max <= 2147483646' })

/**
 * A URL that may carry a key (a hosted node's `/v3/<key>` or `?apikey=`): a literal, or a reference (env:NAME,
 * file:PATH) resolved now and checked the same way; the resolved value is never echoed in a problem.
 */
export const secretUrl = (protocols: RegExp, expected: string) =>
  z.string().transform((raw, ctx): string => {
    let value = raw
    let shown = `got ${JSON.stringify(redactUrl(raw))}, expected ${expected}, or a reference env:NAME / file:PATH holding it`
    if (isSecretRef(raw)) {
      const c = context()
      try {
        value = resolveSecret(raw, c.env, c.baseDir).reveal()
      } catch (err) {
        ctx.issues.push({ code: 'custom', message: err instanceof SecretError ? err.shortMessage : 'cannot resolve secret', input: raw, params: { secret: true } })
        return z.NEVER
      }
      shown = `the value of ${raw} is not ${expected}`
    }
    let ok = false
    try {
      ok = protocols.test(new URL(value).protocol.replace(/:$/, ''))
    } catch {
      ok = false
    }
    if (!ok) {
      ctx.issues.push({ code: 'custom', message: shown, input: raw, params: { secret: true } })
      return z.NEVER
    }
    return value
  })
