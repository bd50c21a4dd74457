/**
 * Parsers of podman's JSON output (`ps -a --format json`, `volume ls --format json`, `image inspect`): pure, so
 * they are tested on recorded output, and defensive, since the output comes from another program.
 */
import { DIGEST_RE, LABEL } from './rules.js'

/** One container as `podman ps -a --format json` lists it. */
export type ContainerInfo = {
  id: string
  name: string
  /** The image reference it was created from, as given (`<image>@<digest>` for ours). */
  image: string
  /** "running", "exited", "created", "paused", ... */
  state: string
  labels: Record<string, string>
  /** Published ports: container port → host port (tcp). */
  ports: { containerPort: number; hostPort: number; hostIp: string }[]
  /** Main process on the host; 0 when not running. */
  pid: number
  /** Unix seconds; 0 when unknown. */
  startedAt: number
}

/** One volume as `podman volume ls --format json` lists it. */
export type VolumeInfo = { name: string; labels: Record<string, string>; mountpoint: string }

const str = (v: unknown) => (typeof v === 'string' ? v : '')
const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : 0)
const labelsOf = (v: unknown): Record<string, string> => {
  const out: Record<string, string> = {}
  if (v && typeof v === 'object' && !Array.isArray(v)) for (const [k, x] of Object.entries(v)) if (typeof x === 'string') out[k] = x
  return out
}

function array(text: string): unknown[] {
  const t = text.trim()
  if (!t) return []
  const v: unknown = JSON.parse(t)
  // podman prints `null` for an empty list in some versions
  if (v === null) return []
  if (!Array.isArray(v)) throw new TypeError('expected a JSON array')
  return v
}

/** Parse `podman ps -a --format json`. Throws on text that is not a JSON array. */
export function parsePs(text: string): ContainerInfo[] {
  return array(text).flatMap((x) => {
    if (!x || typeof x !== 'object') return []
    const o = x as Record<string, unknown>
    const names = Array.isArray(o.Names) ? o.Names.filter((n): n is string => typeof n === 'string') : typeof o.Names === 'string' ? [o.Names] : []
    const ports = (Array.isArray(o.Ports) ? o.Ports : []).flatMap((p) => {
      const q = (p ?? {}) as Record<string, unknown>
      const cp = num(q.container_port ?? q.containerPort)
      const hp = num(q.host_port ?? q.hostPort)
      return cp > 0 && hp > 0 ? [{ containerPort: cp, hostPort: hp, hostIp: str(q.host_ip ?? q.hostIP) }] : []
    })
    const id = str(o.Id ?? o.ID)
    if (!id || !names[0]) return []
    return [{ id, name: names[0], image: str(o.Image), state: str(o.State).toLowerCase(), labels: labelsOf(o.Labels), ports, pid: num(o.Pid), startedAt: num(o.StartedAt) }]
  })
}

/** Parse `podman volume ls --format json`. Throws on text that is not a JSON array. */
export function parseVolumes(text: string): VolumeInfo[] {
  return array(text).flatMap((x) => {
    if (!x || typeof x !== 'object') return []
    const o = x as Record<string, unknown>
    const name = str(o.Name)
    return name ? [{ name, labels: labelsOf(o.Labels), mountpoint: str(o.Mountpoint) }] : []
  })
}

/**
 * True when `podman image inspect --format json <image>@<digest>` shows an image whose manifest digest is `digest`
 * (its own Digest or one of its RepoDigests for `image`): what runs is what the blueprint pinned.
 */
export function imageHasDigest(text: string, image: string, digest: string): boolean {
  if (!DIGEST_RE.test(digest)) return false
  return array(text).some((x) => {
    const o = (x ?? {}) as Record<string, unknown>
    if (o.Digest === digest) return true
    const repo = Array.isArray(o.RepoDigests) ? o.RepoDigests : []
    return repo.some((r) => typeof r === 'string' && r.endsWith(`@${digest}`) && sameRepository(r.slice(0, -digest.length - 1), image))
  })
}

/** Docker Hub's implicit registry and `library/` namespace make "busybox" and "docker.io/library/busybox" one repository. */
function sameRepository(a: string, b: string): boolean {
  const norm = (x: string) => x.replace(/^(?:docker\.io|index\.docker\.io|registry-1\.docker\.io)\//, '').replace(/^library\//, '')
  return norm(a) === norm(b)
}

/** The replica index a container or volume carries in its label, or undefined. */
export function replicaOf(labels: Record<string, string>): number | undefined {
  const r = labels[LABEL.replica]
  return r !== undefined && /^\d{1,4}$/.test(r) ? Number(r) : undefined
}

/** What a failed `pull <image>@<digest>` means, from its exit code and stderr. */
export type PullFailure = {
  /** The registry answered and has no manifest with this digest: the pinned image does not exist. */
  kind: 'digest-unknown' | 'unreachable' | 'denied' | 'other'
  detail: string
}

/**
 * Classify a failed pull. The one place podman's and docker's pull messages are read: a registry that answers
 * "manifest unknown" (or a digest mismatch while verifying) for a pinned digest is a refusal, not a transient fault.
 */
export function classifyPullFailure(stderr: string): PullFailure {
  const detail = stderr.trim().split('\n').slice(-3).join(' ').slice(0, 400)
  const t = stderr.toLowerCase()
  if (/manifest unknown|manifest_unknown|not found: manifest|manifest .*not found|digest did not match|digest mismatch|content digest .* does not match/.test(t)) return { kind: 'digest-unknown', detail }
  if (/unauthorized|denied|authentication required/.test(t)) return { kind: 'denied', detail }
  if (/connection refused|no such host|i\/o timeout|timeout|network is unreachable|tls|eof|502|503|504|connection reset/.test(t)) return { kind: 'unreachable', detail }
  return { kind: 'other', detail }
}
