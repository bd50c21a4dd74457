/**
 * `blueprint-operator status` and `services show|restart|stop ID`: the running daemon seen and steered through its
 * HTTP API. The daemon is found by --url, $BLUEPRINT_OPERATOR_URL, or the `[http] listen` of --config (default
 * ./operator.toml); the admin token for actions by $BPO_ADMIN_TOKEN or the config's `[http] admin_token`.
 */
import { existsSync, readFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { parse as parseToml } from 'smol-toml'
import { BaseError } from '../core/errors.js'
import { formatBaseUnits } from '../core/money.js'
import { resolveSecret } from '../config/secrets.js'

type Io = { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream }

export class UsageError extends BaseError {
  override name = 'UsageError'
  constructor(message: string) {
    super(message, { code: 'CLI_USAGE' })
  }
}

export class DaemonUnreachableError extends BaseError {
  override name = 'DaemonUnreachableError'
  constructor(url: string, cause: unknown) {
    super(`cannot reach the daemon at ${url}: is it running (blueprint-operator run)? Give its address with --url`, { code: 'DAEMON_UNREACHABLE', retryable: true, cause })
  }
}

export class ApiError extends BaseError {
  override name = 'ApiError'
  constructor(status: number, code: string, message: string) {
    super(`${status} ${code}: ${message}`, { code: 'API_ERROR', meta: { status, apiCode: code } })
  }
}

type Target = { url: string; token: string | undefined }

/** Where the daemon listens and the admin token, from the flags, the environment and the TOML file. */
export function daemonTarget(flags: { url?: string | undefined; config?: string | undefined }, env: NodeJS.ProcessEnv = process.env): Target {
  let url = flags.url ?? env.BLUEPRINT_OPERATOR_URL
  let token = env.BPO_ADMIN_TOKEN || undefined
  const file = flags.config ?? (existsSync('operator.toml') ? 'operator.toml' : undefined)
  if (file && (!url || !token)) {
    let doc: { http?: { listen?: unknown; admin_token?: unknown } }
    try {
      doc = parseToml(readFileSync(file, 'utf8')) as typeof doc
    } catch (err) {
      throw new UsageError(`--config ${file}: ${(err as Error).message.split('\n')[0]}`)
    }
    if (!url && typeof doc.http?.listen === 'string') {
      const listen = doc.http.listen
      const host = listen.slice(0, listen.lastIndexOf(':'))
      url = `http://${host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host}:${listen.slice(listen.lastIndexOf(':') + 1)}`
    }
    if (!token && typeof doc.http?.admin_token === 'string') {
      try {
        token = resolveSecret(doc.http.admin_token, env, dirname(resolve(file))).reveal()
      } catch {
        // actions then answer 401, saying what is missing
      }
    }
  }
  return { url: (url ?? 'http://127.0.0.1:9464').replace(/\/$/, ''), token }
}

async function call<T>(t: Target, path: string, method = 'GET'): Promise<T> {
  let res: Response
  try {
    res = await fetch(`${t.url}${path}`, {
      method,
      headers: { accept: 'application/json', ...(method !== 'GET' && { 'content-type': 'application/json' }), ...(t.token && method !== 'GET' && { authorization: `Bearer ${t.token}` }) },
      ...(method !== 'GET' && { body: '{}' }),
      signal: AbortSignal.timeout(130_000),
    })
  } catch (err) {
    throw new DaemonUnreachableError(t.url, err)
  }
  const body = (await res.json().catch(() => ({}))) as { error?: { code: string; message: string } }
  if (!res.ok) {
    const e = body.error ?? { code: `HTTP_${res.status}`, message: res.statusText }
    const hint = res.status === 401 ? ' (set BPO_ADMIN_TOKEN, or [http] admin_token in --config)' : ''
    throw new ApiError(res.status, e.code, e.message + hint)
  }
  return body as T
}

type Summary = {
  serviceId: string
  state: string
  paymentExpired: boolean
  tier: string | null
  replicas: number
  target: string | null
  endpoints: string[]
  paidUntil: string | null
  reason: string | null
  money: { paid: string; earned: string; refunded: string; escrowed: string; cloudCostUsd: string; marginUsd: string }
  token: { symbol: string; decimals: number }
}

const amount = (v: string, t: { symbol: string; decimals: number }) => `${formatBaseUnits(BigInt(v), t.decimals)} ${t.symbol}`
const stateText = (s: Summary) => (s.paymentExpired ? `${s.state} (payment expired)` : s.state)

/** Rows as a left-aligned text table. */
export function table(head: string[], rows: string[][]): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(w[i]!))).join('  ').trimEnd()
  return [line(head), ...rows.map(line)].join('\n') + '\n'
}

export async function statusCommand(t: Target, io: Io): Promise<number> {
  const [st, services, targets] = await Promise.all([
    call<{ operatorId: string; operator: string; chain: { chainId: number; head?: string; cursor?: string; lag?: number }; draining: boolean }>(t, '/api/status'),
    call<Summary[]>(t, '/api/services'),
    call<Array<{ name: string; free: { vcpu: number; memoryGiB: number } | null; replicas: { wanted: number; ready: number }; lastError: { code: string } | null }>>(t, '/api/targets'),
  ])
  io.stdout.write(
    `operator ${st.operatorId} (${st.operator}) · chain ${st.chain.chainId} head ${st.chain.head ?? '-'} cursor ${st.chain.cursor ?? '-'} lag ${st.chain.lag ?? '-'} blocks${st.draining ? ' · DRAINING' : ''}\n\n`,
  )
  io.stdout.write(
    services.length
      ? table(
          ['ID', 'STATE', 'TIER', 'REPLICAS', 'TARGET', 'PAID UNTIL', 'PAID', 'EARNED', 'MARGIN', 'ENDPOINT'],
          services.map((s) => [
            s.serviceId,
            stateText(s),
            s.tier ?? '-',
            String(s.replicas),
            s.target ?? '-',
            s.paidUntil ?? '-',
            amount(s.money.paid, s.token),
            amount(s.money.earned, s.token),
            `${s.money.marginUsd} USD`,
            s.endpoints[0] ?? (s.reason ? `(${s.reason})` : '-'),
          ]),
        )
      : 'no services\n',
  )
  io.stdout.write(
    `\n${table(
      ['TARGET', 'FREE VCPU', 'FREE MEMORY', 'REPLICAS READY/WANTED', 'LAST ERROR'],
      targets.map((x) => [x.name, x.free ? String(x.free.vcpu) : '-', x.free ? `${x.free.memoryGiB} GiB` : '-', `${x.replicas.ready}/${x.replicas.wanted}`, x.lastError?.code ?? '']),
    )}`,
  )
  return 0
}

export async function servicesCommand(sub: string | undefined, id: string | undefined, t: Target, io: Io): Promise<number> {
  if (!sub || !['show', 'restart', 'stop'].includes(sub)) throw new UsageError(`services needs show, restart or stop${sub ? `, not ${JSON.stringify(sub)}` : ''}`)
  if (!id || !/^\d+$/.test(id)) throw new UsageError(`services ${sub} needs a numeric service ID${id ? `, not ${JSON.stringify(id)}` : ''}`)
  if (sub === 'restart') {
    const r = await call<{ state: string; endpoints: string[] }>(t, `/api/services/${id}/restart`, 'POST')
    io.stdout.write(`service ${id} restarted: ${r.state}, ${r.endpoints.join(' ') || 'no endpoint'}\n`)
    return 0
  }
  if (sub === 'stop') {
    const r = await call<{ state: string }>(t, `/api/services/${id}/stop`, 'POST')
    io.stdout.write(`service ${id} is ${r.state}: it is destroyed, what was earned withdrawn and the rest refunded (OPERATOR_STOPPED)\n`)
    return 0
  }
  const s = await call<Summary & { deploymentId: string; spec: unknown; quote: unknown; decision: unknown; timeline: Array<{ at: string; from: string | null; to: string; cause: string; detail?: string }> }>(t, `/api/services/${id}`)
  const kv: Array<[string, string]> = [
    ['state', stateText(s) + (s.reason ? ` (${s.reason})` : '')],
    ['deployment', s.deploymentId],
    ['tier', `${s.tier ?? '-'}, ${s.replicas} replica(s) on ${s.target ?? '-'}`],
    ['endpoints', s.endpoints.join(' ') || '-'],
    ['paid until', s.paidUntil ?? '-'],
    ['paid', amount(s.money.paid, s.token)],
    ['earned', amount(s.money.earned, s.token)],
    ['refunded', amount(s.money.refunded, s.token)],
    ['in escrow', amount(s.money.escrowed, s.token)],
    ['cloud cost', `${s.money.cloudCostUsd} USD`],
    ['margin', `${s.money.marginUsd} USD`],
  ]
  io.stdout.write(`service ${s.serviceId}\n${kv.map(([k, v]) => `  ${k.padEnd(11)} ${v}`).join('\n')}\n\ntimeline\n`)
  for (const h of s.timeline) io.stdout.write(`  ${h.at}  ${(h.from ?? '-').padEnd(14)} -> ${h.to.padEnd(14)} ${h.cause}${h.detail ? `: ${h.detail}` : ''}\n`)
  io.stdout.write(`\ndecision\n${JSON.stringify(s.decision ?? s.quote, null, 2)}\n\nspec\n${JSON.stringify(s.spec, null, 2)}\n`)
  return 0
}
