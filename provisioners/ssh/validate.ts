/**
 * Strict validation of every value that reaches an SSH host: ids, env keys and values, sources. Anything outside
 * these shapes is refused before a connection is made (MALFORMED_REQUEST), quoting is the second line of defence.
 */
import type { DeploymentRequest } from '../types.js'
import { ProvisionError } from '../errors.js'
import { assertEnvAllowed, envProblems } from '../envPolicy.js'
import { containerSourceProblems } from '../container/rules.js'

export { ENV_KEY_RE } from '../envPolicy.js'

/** Deployment ids: DNS label (lowercase letters, digits, inner dashes), at most 63 characters. */
export const DEPLOYMENT_ID_RE = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/
/** Operator ids: lowercase letters, digits, dot, dash, underscore; at most 64 characters. */
export const OPERATOR_ID_RE = /^[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?$/
/** Host names as written in the operator's TOML. */
export const HOST_NAME_RE = /^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,62})$/
const SHA256_RE = /^[0-9a-f]{64}$/

function malformed(what: string, problems: string[]): ProvisionError {
  return new ProvisionError(`malformed ${what}`, { reason: 'MALFORMED_REQUEST', code: 'MALFORMED_REQUEST', retryable: false, details: problems })
}

/** Throw MALFORMED_REQUEST unless `id` is a valid deployment id. */
export function assertDeploymentId(id: unknown): asserts id is string {
  if (typeof id !== 'string' || !DEPLOYMENT_ID_RE.test(id)) throw malformed('deployment id', [`deploymentId: got ${JSON.stringify(id)}, expected ${DEPLOYMENT_ID_RE}`])
}

/** Throw MALFORMED_REQUEST unless `n` is a whole replica count 0..1000. */
export function assertReplicas(n: unknown): asserts n is number {
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 1000) throw malformed('replica count', [`replicas: got ${String(n)}, expected an integer 0..1000`])
}

/** Every problem with a request at once (empty when it is acceptable). */
export function requestProblems(req: DeploymentRequest): string[] {
  const p: string[] = []
  if (typeof req.deploymentId !== 'string' || !DEPLOYMENT_ID_RE.test(req.deploymentId)) p.push(`deploymentId: got ${JSON.stringify(req.deploymentId)}, expected ${DEPLOYMENT_ID_RE}`)
  for (const k of ['serviceId', 'blueprintId'] as const) {
    if (typeof req[k] !== 'string' || !/^[0-9]{1,78}$/.test(req[k])) p.push(`${k}: got ${JSON.stringify(req[k])}, expected a decimal string`)
  }
  // the shared policy of every shell-started target (envPolicy.ts)
  p.push(...envProblems(req.env))
  const s = req.source
  if (s.kind === 'native' || s.kind === 'testing') {
    let url: URL | undefined
    try {
      url = new URL(s.url)
    } catch {
      p.push(`source.url: not a URL`)
    }
    if (url && url.protocol !== 'http:' && url.protocol !== 'https:') p.push(`source.url: scheme ${url.protocol} is not http(s)`)
    if (!SHA256_RE.test(s.sha256)) p.push(`source.sha256: expected 64 lowercase hex characters`)
  } else if (s.kind === 'container') {
    // the container rules of every target (tags refused, sha256 digests only)
    p.push(...containerSourceProblems(s))
  } else {
    p.push(`source.kind: got ${JSON.stringify((s as { kind: unknown }).kind)}`)
  }
  const spec = req.spec
  for (const k of ['vcpu', 'memoryGiB', 'storageGiB'] as const) {
    if (typeof spec[k] !== 'number' || !Number.isFinite(spec[k]) || spec[k] < 0) p.push(`spec.${k}: got ${spec[k]}, expected a finite number >= 0`)
  }
  if (!Number.isInteger(spec.replicas) || spec.replicas < 0 || spec.replicas > 1000) p.push(`spec.replicas: got ${spec.replicas}, expected 0..1000`)
  for (const port of spec.ports) if (!Number.isInteger(port) || port < 1 || port > 65535) p.push(`spec.ports: got ${port}`)
  if (req.healthPath !== undefined && (!req.healthPath.startsWith('/') || /[\s\0]/.test(req.healthPath))) p.push(`healthPath: got ${JSON.stringify(req.healthPath)}, expected an absolute path`)
  if (req.placement !== undefined && !HOST_NAME_RE.test(req.placement)) p.push(`placement: got ${JSON.stringify(req.placement)}, expected a host name`)
  return p
}

/** Throw ENV_REFUSED for a refused env, else MALFORMED_REQUEST listing every problem of the request. */
export function assertRequest(req: DeploymentRequest): void {
  assertEnvAllowed(req.env)
  const p = requestProblems(req)
  if (p.length) throw malformed('deployment request', p)
}
