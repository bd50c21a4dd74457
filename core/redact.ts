/**
 * One redaction rule for every URL that reaches a log line, an error, the API or a metric label: hosted RPC and
 * WebSocket URLs carry their API key in the userinfo, the query (`?apikey=`), or the path (`/v3/<key>`,
 * `/<long hex or base58 key>`). What stays is enough to tell endpoints apart: scheme, host, port, short path words.
 */

const URL_IN_TEXT = /\b[a-z][a-z0-9+.-]*:\/\/[^\s"'<>`\\]+/gi
const URL_PARTS = /^([a-z][a-z0-9+.-]*:\/\/)([^/?#]*)([^?#]*)(\?[^#]*)?(#.*)?$/i
/** Path words after which the next segment is a key (Infura `/v3/<key>`, Alchemy `/v2/<key>`, `/key/<key>`...). */
const KEY_MARKERS = /^(v\d{1,2}|keys?|api-?keys?|api_keys?|tokens?|auth|secrets?|access|rpc|ws)$/i
const MASK = '***'

/** True when a path or query segment looks like a credential rather than a word. */
export function isKeyLike(segment: string): boolean {
  let s = segment
  try {
    s = decodeURIComponent(segment)
  } catch {
    // keep it raw
  }
  if (s.length >= 16 && /^(0x)?[0-9a-f]+$/i.test(s)) return true
  // base58, base64(url) and mixed keys: long, letters and digits together
  return s.length >= 20 && /^[A-Za-z0-9_\-=+.~]+$/.test(s) && /\d/.test(s) && /[A-Za-z]/.test(s)
}

/** Redact one URL (returned unchanged when it is not one): userinfo, every query value, the fragment, key-like path segments. */
export function redactUrl(url: string): string {
  const m = URL_PARTS.exec(url)
  if (!m) return url
  const [, scheme, authority = '', path = '', query, fragment] = m
  const at = authority.lastIndexOf('@')
  const host = at >= 0 ? `${MASK}@${authority.slice(at + 1)}` : authority
  const segs = path.split('/')
  const outSegs = segs.map((seg, i) => (seg && ((i > 0 && KEY_MARKERS.test(segs[i - 1]!) && seg.length >= 6) || isKeyLike(seg)) ? MASK : seg))
  const q = query
    ? `?${query
        .slice(1)
        .split('&')
        .map((kv) => {
          const eq = kv.indexOf('=')
          if (eq >= 0) return `${kv.slice(0, eq)}=${kv.length > eq + 1 ? MASK : ''}`
          return isKeyLike(kv) ? MASK : kv
        })
        .join('&')}`
    : ''
  return `${scheme}${host}${outSegs.join('/')}${q}${fragment ? `#${MASK}` : ''}`
}

/**
 * Redact every URL inside free text (messages, stacks, JSON lines), then every known secret value (`secrets`: what
 * the configuration resolved) wherever it appears.
 */
export function redactText(text: string, secrets: readonly string[] = []): string {
  let out = text.replace(URL_IN_TEXT, (u) => {
    // trailing punctuation belongs to the sentence, not the URL
    const t = /[.,;:)\]}]+$/.exec(u)?.[0] ?? ''
    return redactUrl(t ? u.slice(0, -t.length) : u) + t
  })
  for (const s of secrets) {
    if (s.length < 6) continue
    if (out.includes(s)) out = out.split(s).join(MASK)
    // a secret URL also appears redacted-but-recognisable; its key-like parts are gone already
  }
  return out
}

/** A redactor bound to the configuration's secret values. */
export type Redactor = (text: string) => string

/** Build a redactor for `secrets` (longest first, so a secret containing another is masked whole). */
export function createRedactor(secrets: readonly string[] = []): Redactor {
  const sorted = [...new Set(secrets)].filter((s) => s.length >= 6).sort((a, b) => b.length - a.length)
  return (text) => redactText(text, sorted)
}

/** A copy of a JSON-like value with every string passed through `redact` (keys kept). */
export function redactDeep<T>(value: T, redact: Redactor = (t) => redactText(t)): T {
  const seen = new WeakSet<object>()
  const visit = (v: unknown): unknown => {
    if (typeof v === 'string') return redact(v)
    if (!v || typeof v !== 'object') return v
    if (seen.has(v)) return v
    seen.add(v)
    if (Array.isArray(v)) return v.map(visit)
    if (Object.getPrototypeOf(v) !== Object.prototype && Object.getPrototypeOf(v) !== null) return v
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, visit(x)]))
  }
  return visit(value) as T
}
