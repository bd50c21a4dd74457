/**
 * The container rules every target that runs OCI images applies (local podman, SSH hosts' podman/docker): images
 * only by digest (tags refused), one name and label scheme, limits from the ResourceSpec, an explicit environment.
 * Argument vectors are arrays handed to execFile (or quoted word by word over SSH), never shell strings.
 */
import type { BlueprintSource, DeploymentRequest } from '../types.js'

/** A manifest digest: "sha256:" and 64 lowercase hex characters (the only algorithm accepted). */
export const DIGEST_RE = /^sha256:[0-9a-f]{64}$/
/** An OCI repository without tag or digest: registry[:port]/path (lowercase path components). */
export const IMAGE_RE = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9.-]*[a-zA-Z0-9])?(?::[0-9]{1,5})?\/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/

/** Label keys put on every container and volume (values: operator id, deployment id, replica index, tag). */
export const LABEL = {
  owner: 'io.blueprint-operator.owner',
  deployment: 'io.blueprint-operator.deployment',
  replica: 'io.blueprint-operator.replica',
  tag: 'io.blueprint-operator.tag',
} as const

/** Where the replica's data volume is mounted inside the container (DATA_DIR). */
export const DATA_MOUNT = '/data'
/** The container port when the spec names none. */
export const DEFAULT_CONTAINER_PORT = 8080
const GiB = 1024 ** 3

type ContainerSource = Extract<BlueprintSource, { kind: 'container' }>

/** Every problem with a container source (empty when it is acceptable): a tag, a missing or foreign digest. */
export function containerSourceProblems(s: { image?: unknown; digest?: unknown }): string[] {
  const p: string[] = []
  const image = s.image
  if (typeof image !== 'string' || image.length > 255 || !IMAGE_RE.test(image)) {
    const tagged = typeof image === 'string' && /[:@][^/]*$/.test(image)
    p.push(`source.image: got ${JSON.stringify(image)}, expected a repository without ${tagged ? 'a tag or digest (tags are refused: images run by digest only)' : 'tag or digest'}`)
  }
  if (typeof s.digest !== 'string' || !DIGEST_RE.test(s.digest)) p.push(`source.digest: got ${JSON.stringify(s.digest)}, expected sha256:<64 lowercase hex>`)
  return p
}

/** The only reference a container is ever pulled or run by: `<image>@<digest>`. Throws on a tag or a bad digest. */
export function imageRef(s: ContainerSource): string {
  const p = containerSourceProblems(s)
  if (p.length) throw new TypeError(p.join('; '))
  return `${s.image}@${s.digest}`
}

/** Name of replica `i`'s container: `bpo-<tag>-<deploymentId>-r<i>` (the SSH target's unit and cgroup names too). */
export function replicaName(tag: string, deploymentId: string, i: number): string {
  return `${namePrefix(tag, deploymentId)}${i}`
}

/** The prefix of every replica name of a deployment (`bpo-<tag>-<deploymentId>-r`). */
export function namePrefix(tag: string, deploymentId: string): string {
  return `bpo-${tag}-${deploymentId}-r`
}

/** Name of replica `i`'s data volume: `bpo-<tag>-<deploymentId>-r<i>-data`. */
export function volumeName(tag: string, deploymentId: string, i: number): string {
  return `${replicaName(tag, deploymentId, i)}-data`
}

/** Deployment id and replica index of a container or volume name under `tag`, or undefined when not ours. */
export function parseName(tag: string, name: string): { deploymentId: string; replica: number; volume: boolean } | undefined {
  const m = /^bpo-([0-9a-z]+)-([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)-r(\d{1,4})(-data)?$/.exec(name)
  if (!m || m[1] !== tag) return undefined
  return { deploymentId: m[2]!, replica: Number(m[3]), volume: m[4] !== undefined }
}

/** `--label` arguments of a replica's container or volume. */
export function labelArgs(p: { operatorId: string; tag: string; deploymentId: string; replica: number }): string[] {
  return ['--label', `${LABEL.owner}=${p.operatorId}`, '--label', `${LABEL.deployment}=${p.deploymentId}`, '--label', `${LABEL.replica}=${p.replica}`, '--label', `${LABEL.tag}=${p.tag}`]
}

/** `--filter` arguments that select this operator's (and tag's) containers or volumes, optionally of one deployment. */
export function ownerFilter(p: { operatorId: string; tag: string; deploymentId?: string }): string[] {
  const f = ['--filter', `label=${LABEL.owner}=${p.operatorId}`, '--filter', `label=${LABEL.tag}=${p.tag}`]
  if (p.deploymentId) f.push('--filter', `label=${LABEL.deployment}=${p.deploymentId}`)
  return f
}

/** Memory and CPU limits of one replica: `--memory <bytes>` and `--cpus <n>` (0 means no limit). */
export function limitArgs(spec: { vcpu: number; memoryGiB: number }): string[] {
  const a: string[] = []
  if (spec.memoryGiB > 0) a.push('--memory', String(Math.floor(spec.memoryGiB * GiB)))
  if (spec.vcpu > 0) a.push('--cpus', String(spec.vcpu))
  return a
}

/**
 * The container's whole environment: the request's env, then what the target sets (which always wins). `markers`
 * adds BPO_OWNER / BPO_DEPLOYMENT (the SSH target's host scan reads them); the local target leaves them out, since its
 * /proc scan of native replicas would otherwise take container processes for its own (labels carry ownership).
 */
export function containerEnv(req: DeploymentRequest, p: { operatorId: string; replica: number; containerPort: number; host: string; markers?: boolean }): [string, string][] {
  const env: [string, string][] = [
    ...Object.entries(req.env ?? {}),
    ['PORT', String(p.containerPort)],
    ['HOST', p.host],
    ['SERVICE_ID', req.serviceId],
    ['BLUEPRINT_ID', req.blueprintId],
    ['DEPLOYMENT_ID', req.deploymentId],
    ['REPLICA_INDEX', String(p.replica)],
    ['DATA_DIR', DATA_MOUNT],
  ]
  if (p.markers !== false) env.push(['BPO_OWNER', p.operatorId], ['BPO_DEPLOYMENT', req.deploymentId])
  return env
}

export type RunArgsParameters = {
  req: DeploymentRequest
  operatorId: string
  tag: string
  replica: number
  /** REPLICA_INDEX the workload sees, when it differs from `replica` (a cloud VM's one replica). Default `replica`. */
  replicaIndex?: number
  /** Host port the container port is published on. */
  hostPort: number
  /** Host address the port is published on (e.g. "127.0.0.1"); omitted: every address. */
  publishAddress?: string
  /** Volume name or absolute host directory mounted at /data. */
  data: string
  /** Extra arguments before the image (runtime, ulimits, hardening). */
  extra?: readonly string[]
  /** BPO_OWNER / BPO_DEPLOYMENT in the container's environment (see containerEnv). Default true. */
  markers?: boolean
}

/**
 * `run` arguments after `run -d --name <name>`: labels, restart policy, limits, the published port, the data mount,
 * the explicit environment, and the image by digest. Nothing else of the host reaches the container: no other mount,
 * no host environment (podman callers add `--http-proxy=false` in `extra`: podman would otherwise copy its own
 * proxy variables in).
 */
export function runArgs(p: RunArgsParameters): string[] {
  const { req } = p
  if (req.source.kind !== 'container') throw new TypeError('not a container source')
  const containerPort = req.spec.ports[0] ?? DEFAULT_CONTAINER_PORT
  const publish = p.publishAddress ? `${p.publishAddress.includes(':') ? `[${p.publishAddress}]` : p.publishAddress}:${p.hostPort}:${containerPort}` : `${p.hostPort}:${containerPort}`
  const args = [
    ...labelArgs({ operatorId: p.operatorId, tag: p.tag, deploymentId: req.deploymentId, replica: p.replica }),
    '--restart', 'always',
    '-p', publish,
    '-v', `${p.data}:${DATA_MOUNT}`,
    ...limitArgs(req.spec),
    ...(p.extra ?? []),
  ]
  for (const [k, v] of containerEnv(req, { operatorId: p.operatorId, replica: p.replicaIndex ?? p.replica, containerPort, host: '0.0.0.0', markers: p.markers })) args.push('-e', `${k}=${v}`)
  args.push(imageRef(req.source))
  return args
}
