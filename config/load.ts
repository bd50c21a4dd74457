/**
 * Load a TOML file through a schema (the operator's, built in daemon/config.ts from the core sections and the
 * providers' own) into a validated, frozen config. Every problem is reported at once — schema and secret problems
 * together — each with its TOML path; secrets are resolved from their references and never appear in clear.
 */
import { readFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { parse as parseToml, TomlError } from 'smol-toml'
import type { z } from 'zod'
import { BaseError } from '../core/errors.js'
import { withLoadContext } from './fields.js'

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
  // a reference that did not resolve: its own message says why (it names the variable or file, never a value)
  if (issue.code === 'custom' && (issue as { params?: { secret?: boolean } }).params?.secret) return [{ path: pathOf(issue.path), message: issue.message }]
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

/** Validate an already-parsed TOML document with `schema`. `file` names it in errors and anchors relative paths. */
export function parseConfigWith<S extends z.ZodType>(schema: S, doc: unknown, o: LoadConfigOptions = {}): z.output<S> {
  const file = o.file ?? '<config>'
  const baseDir = o.baseDir ?? (o.file ? dirname(resolve(o.file)) : process.cwd())
  const env = o.env ?? process.env
  // container images set these (the listen address and the volume), over whatever the mounted file says
  if ((env.BPO_HTTP_LISTEN || env.BPO_DATA_DIR) && doc && typeof doc === 'object') {
    const d = doc as Record<string, Record<string, unknown> | undefined>
    doc = {
      ...d,
      ...(env.BPO_HTTP_LISTEN && { http: { ...d.http, listen: env.BPO_HTTP_LISTEN } }),
      ...(env.BPO_DATA_DIR && { operator: { ...d.operator, data_dir: env.BPO_DATA_DIR } }),
    }
  }
  const r = withLoadContext({ env, baseDir }, () => schema.safeParse(doc))
  if (!r.success) {
    const problems: ConfigProblem[] = []
    for (const issue of r.error.issues) problems.push(...describe(issue, doc))
    throw new ConfigError(file, problems)
  }
  return deepFreeze(r.data)
}

/** Read, parse and validate a TOML file. Throws ConfigError listing every problem. */
export function loadConfigWith<S extends z.ZodType>(schema: S, file: string, o: Omit<LoadConfigOptions, 'file'> = {}): z.output<S> {
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
  return parseConfigWith(schema, doc, { ...o, file })
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    // Decimal instances and Secrets are immutable already
    if (isDecimal(o)) return o
    Object.freeze(o)
    for (const v of Object.values(o as object)) deepFreeze(v)
  }
  return o
}

const isDecimal = (o: object) => typeof (o as { toFixed?: unknown }).toFixed === 'function' && 'd' in o && 'e' in o && 's' in o
