/**
 * FAKE Kubernetes API server for tests (never shipped). It speaks the real wire format for the subset the
 * Kubernetes provisioner uses, so the real, unmodified `@kubernetes/client-node` can be pointed at it through a
 * kubeconfig file:
 *
 * - resources: namespaces, services, persistentvolumeclaims (core/v1), deployments and statefulsets (apps/v1, with the
 *   autoscaling/v1 `Scale` subresource), horizontalpodautoscalers (autoscaling/v2); item paths, namespaced and
 *   all-namespace lists with `labelSelector` (=, ==, !=, exists, !exists, in, notin);
 * - verbs: GET, POST (201; 409 AlreadyExists), PUT (optimistic concurrency: a stale metadata.resourceVersion is a 409
 *   Conflict), DELETE (namespaces go Terminating, then disappear with everything in them), PATCH with
 *   `application/merge-patch+json` (RFC 7386) and `application/apply-patch+yaml` (server-side apply: requires
 *   fieldManager, creates when absent, tracks field ownership per manager and operation, removes fields an applier
 *   stopped applying, answers a non-forced conflicting apply with 409). Other patch types answer 415 — this fake does
 *   not implement them; apply bodies must be the JSON form of YAML (what the client sends);
 * - objects get metadata.uid / resourceVersion / creationTimestamp / generation / managedFields and the server-side
 *   defaults a real API server fills (strategy, clusterIP, protocol, ...); some validation answers 422 (names,
 *   selector vs template labels, containers, quantities, limits >= requests, extended resources, HPA bounds,
 *   immutable selector / StatefulSet fields);
 * - `Status` bodies for 404 / 409 / 422 are built from the recorded ones in ../shared/fixtures/kubernetes/;
 * - minimal controllers: a Deployment / StatefulSet gets status.readyReplicas = spec.replicas after `readyDelayMs`
 *   (unless pods are set never to become ready), a StatefulSet gets one Bound PVC per ordinal (kept on scale down),
 *   an HPA keeps its target's replicas within [minReplicas, maxReplicas] unless the target is at 0 (as the real HPA
 *   controller does: scaling is disabled at 0 replicas).
 *
 * Faults: `setAvailability('unavailable')` answers 503, `'reset'` destroys every connection, `'hang'` never answers;
 * `failNext` answers one matching request with a given Status; `beforeNext` runs code (e.g. another writer's
 * `mutate`) just before a matching request is handled.
 */
import { randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { AddressInfo, Socket } from 'node:net'
import { join } from 'node:path'
import { kubeconfigFor, kubernetesFixturesDir, testPki, writeKubeconfig } from './kubernetes-certs.js'

// ---------------------------------------------------------------------------------------------------------------
// types

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type KObject = Record<string, any>

export type ResourceName = 'namespaces' | 'services' | 'persistentvolumeclaims' | 'deployments' | 'statefulsets' | 'horizontalpodautoscalers'

type ResourceDef = { plural: ResourceName; group: string; version: string; kind: string; namespaced: boolean; generation: boolean }

const defs: ResourceDef[] = [
  { plural: 'namespaces', group: '', version: 'v1', kind: 'Namespace', namespaced: false, generation: false },
  { plural: 'services', group: '', version: 'v1', kind: 'Service', namespaced: true, generation: false },
  { plural: 'persistentvolumeclaims', group: '', version: 'v1', kind: 'PersistentVolumeClaim', namespaced: true, generation: false },
  { plural: 'deployments', group: 'apps', version: 'v1', kind: 'Deployment', namespaced: true, generation: true },
  { plural: 'statefulsets', group: 'apps', version: 'v1', kind: 'StatefulSet', namespaced: true, generation: true },
  { plural: 'horizontalpodautoscalers', group: 'autoscaling', version: 'v2', kind: 'HorizontalPodAutoscaler', namespaced: true, generation: true },
]
const defOf = (r: ResourceName) => defs.find((d) => d.plural === r)!
const apiVersionOf = (d: ResourceDef) => (d.group ? `${d.group}/${d.version}` : d.version)

export type RecordedRequest = { method: string; path: string; query: string; contentType: string | undefined; fieldManager: string | null; status: number }

export type Availability = 'up' | 'unavailable' | 'reset' | 'hang'

export type RequestMatcher = { method?: string; path?: RegExp }

export type FakeKubernetesApiOptions = {
  /** https with a generated CA and client-certificate auth (default), or plain http with a bearer token. */
  tls?: boolean
  /** Delay before the fake controllers update status, in ms. Default 5. */
  readyDelayMs?: number
  /** Delay between a namespace's deletion request and its disappearance, in ms. Default 20. */
  namespaceDeleteDelayMs?: number
}

export type FakeKubernetesApi = {
  /** https://127.0.0.1:<port> (or http://...). */
  url: string
  /** A kubeconfig file for this server (in a temp dir removed by `close`). */
  kubeconfigPath: string
  /** Every request handled so far. */
  requests: RecordedRequest[]
  /** A stored object (with kind/apiVersion), or undefined. */
  get(resource: ResourceName, namespace: string | undefined, name: string): KObject | undefined
  /** Stored objects of a resource, optionally in one namespace. */
  list(resource: ResourceName, namespace?: string): KObject[]
  /** Store an object as another client would have created it (POST semantics, manager "seed"). */
  seed(resource: ResourceName, obj: KObject): KObject
  /** Change a stored object as another writer would (new resourceVersion; generation bumps on spec changes). */
  mutate(resource: ResourceName, namespace: string | undefined, name: string, change: (obj: KObject) => void): void
  setAvailability(a: Availability): void
  /** Requests held open by 'hang' whose connection the client has not closed yet. */
  hangingRequests(): number
  /** false: pods of every workload stay unready until set back to true. */
  setPodsReady(ready: boolean): void
  /** Answer the next request matching `m` with this status code / reason / message instead of handling it. */
  failNext(m: RequestMatcher, status: number, reason: string, message: string): void
  /** Run `fn` just before the next request matching `m` is handled. */
  beforeNext(m: RequestMatcher, fn: () => void): void
  close(): Promise<void>
}

// ---------------------------------------------------------------------------------------------------------------
// recorded Status bodies

const fixture = (name: string): KObject => JSON.parse(readFileSync(join(kubernetesFixturesDir, name), 'utf8'))

class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: KObject,
  ) {
    super(String(body.message))
  }
}

const qualified = (d: ResourceDef) => (d.group ? `${d.plural}.${d.group}` : d.plural)
const withGroup = (details: KObject, d: ResourceDef) => (d.group ? { name: details.name, group: d.group, kind: details.kind } : details)

function notFound(d: ResourceDef, name: string): ApiError {
  const b = fixture('status-404-notfound.json')
  b.message = `${qualified(d)} "${name}" not found`
  b.details = withGroup({ name, kind: d.plural }, d)
  return new ApiError(404, b)
}
function alreadyExists(d: ResourceDef, name: string): ApiError {
  const b = fixture(d.group ? 'status-409-alreadyexists.jobs-batch.json' : 'status-409-alreadyexists.json')
  b.message = `${qualified(d)} "${name}" already exists`
  b.details = withGroup({ name, kind: d.plural }, d)
  return new ApiError(409, b)
}
function conflict(d: ResourceDef, name: string, message?: string, causes?: KObject[]): ApiError {
  const b = fixture('status-409-conflict.json')
  b.message = message ?? `Operation cannot be fulfilled on ${qualified(d)} "${name}": the object has been modified; please apply your changes to the latest version and try again`
  b.details = withGroup({ name, kind: d.plural }, d)
  if (causes) b.details.causes = causes
  return new ApiError(409, b)
}
type Cause = { reason: string; message: string; field: string }
function invalid(d: ResourceDef, name: string, causes: Cause[]): ApiError {
  const forbidden = causes.length === 1 && causes[0]!.reason === 'FieldValueForbidden' && causes[0]!.field === 'spec' && d.plural === 'statefulsets'
  const b = fixture(forbidden ? 'status-422-invalid.statefulset-forbidden.json' : 'status-422-invalid.deployment.json')
  const what = `${d.kind}${d.group ? `.${d.group}` : ''} "${name}" is invalid: `
  const one = (c: Cause) => `${c.field}: ${c.message}`
  b.message = what + (causes.length === 1 ? one(causes[0]!) : `[${causes.map(one).join(', ')}]`)
  b.details = { name, ...(d.group && { group: d.group }), kind: d.kind, causes }
  return new ApiError(422, b)
}
function plainStatus(code: number, reason: string, message: string, details?: KObject): ApiError {
  // same envelope as the recorded bodies
  const b = fixture('status-404-notfound.json')
  b.code = code
  b.reason = reason
  b.message = message
  if (details) b.details = details
  else delete b.details
  return new ApiError(code, b)
}

// ---------------------------------------------------------------------------------------------------------------
// small JSON helpers

const clone = <T>(x: T): T => (x === undefined ? x : JSON.parse(JSON.stringify(x)))
const isObj = (x: unknown): x is KObject => !!x && typeof x === 'object' && !Array.isArray(x)
function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => deepEqual(x, b[i]))
  if (isObj(a) && isObj(b)) {
    const ka = Object.keys(a)
    const kb = Object.keys(b)
    return ka.length === kb.length && ka.every((k) => k in b && deepEqual(a[k], b[k]))
  }
  return false
}
/** True when every field set in `a` has the same value in `b` (lists element-wise): `b` may carry server defaults. */
function subsetOf(a: unknown, b: unknown): boolean {
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => subsetOf(x, b[i]))
  if (isObj(a) && isObj(b)) return Object.entries(a).every(([k, v]) => subsetOf(v, b[k]))
  return deepEqual(a, b)
}
/** RFC 7386 JSON merge patch. */
function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObj(patch)) return clone(patch)
  const out: KObject = isObj(target) ? clone(target) : {}
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k]
    else out[k] = mergePatch(out[k], v)
  }
  return out
}
const ignoredForOwnership = new Set(['apiVersion', 'kind', 'status', 'metadata.name', 'metadata.namespace', 'metadata.uid', 'metadata.resourceVersion', 'metadata.generation', 'metadata.creationTimestamp', 'metadata.managedFields', 'metadata.deletionTimestamp'])
/** Leaf paths of an object (lists are atomic leaves, as far as this fake's field ownership goes). */
function leafPaths(obj: unknown, prefix = ''): string[] {
  if (!isObj(obj) || (prefix && Object.keys(obj).length === 0)) return prefix ? [prefix] : []
  const out: string[] = []
  for (const [k, v] of Object.entries(obj)) {
    const p = prefix ? `${prefix}.${k.replace(/\./g, '\\.')}` : k
    if (ignoredForOwnership.has(p) || [...ignoredForOwnership].some((i) => p.startsWith(`${i}.`))) continue
    out.push(...leafPaths(v, p))
  }
  return out
}
const splitPath = (p: string) => p.split(/(?<!\\)\./).map((s) => s.replace(/\\\./g, '.'))
function getPath(obj: unknown, path: string): unknown {
  let cur: unknown = obj
  for (const k of splitPath(path)) cur = isObj(cur) ? cur[k] : undefined
  return cur
}
function deletePath(obj: KObject, path: string): void {
  const keys = splitPath(path)
  const parents: KObject[] = []
  let cur: unknown = obj
  for (const k of keys.slice(0, -1)) {
    if (!isObj(cur)) return
    parents.push(cur)
    cur = cur[k]
  }
  if (!isObj(cur)) return
  delete cur[keys[keys.length - 1]!]
  // drop maps emptied by the removal (a real server would leave no trace of a field nobody sets)
  for (let i = keys.length - 2; i >= 0; i--) {
    const parent = parents[i]!
    const child = parent[keys[i]!]
    if (isObj(child) && Object.keys(child).length === 0) delete parent[keys[i]!]
    else break
  }
}
function fieldsV1(paths: Iterable<string>): KObject {
  const root: KObject = {}
  for (const p of paths) {
    let cur = root
    for (const k of splitPath(p)) cur = cur[`f:${k}`] ??= {}
  }
  return root
}

// ---------------------------------------------------------------------------------------------------------------
// labels, quantities, names

type Requirement = { key: string; op: 'in' | 'notin' | 'exists' | '!exists'; values: string[] }
function parseSelector(s: string): Requirement[] {
  const reqs: Requirement[] = []
  const parts = s.match(/([^,(]+(\([^)]*\))?)/g) ?? []
  for (const raw of parts.map((x) => x.trim()).filter(Boolean)) {
    let m: RegExpMatchArray | null
    if ((m = raw.match(/^([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)$/))) reqs.push({ key: m[1]!, op: m[2] as 'in' | 'notin', values: m[3]!.split(',').map((v) => v.trim()) })
    else if ((m = raw.match(/^([\w./-]+)\s*!=\s*([\w.-]*)$/))) reqs.push({ key: m[1]!, op: 'notin', values: [m[2]!] })
    else if ((m = raw.match(/^([\w./-]+)\s*==?\s*([\w.-]*)$/))) reqs.push({ key: m[1]!, op: 'in', values: [m[2]!] })
    else if ((m = raw.match(/^!([\w./-]+)$/))) reqs.push({ key: m[1]!, op: '!exists', values: [] })
    else if ((m = raw.match(/^([\w./-]+)$/))) reqs.push({ key: m[1]!, op: 'exists', values: [] })
    else throw plainStatus(400, 'BadRequest', `unable to parse requirement: ${JSON.stringify(raw)}`)
  }
  return reqs
}
function matches(labels: Record<string, string> | undefined, reqs: Requirement[]): boolean {
  const l = labels ?? {}
  return reqs.every((r) => {
    const has = Object.prototype.hasOwnProperty.call(l, r.key)
    if (r.op === 'exists') return has
    if (r.op === '!exists') return !has
    if (r.op === 'in') return has && r.values.includes(l[r.key]!)
    return !has || !r.values.includes(l[r.key]!)
  })
}

const quantityRe = /^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$/
const suffixes: Record<string, number> = { '': 1, m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60 }
function quantity(s: unknown): number | undefined {
  const str = typeof s === 'number' ? String(s) : s
  if (typeof str !== 'string') return undefined
  const m = str.match(quantityRe)
  if (!m) return undefined
  const n = Number(m[1])
  if (!Number.isFinite(n)) return undefined
  const suf = m[2] ?? ''
  if (suf in suffixes) return n * suffixes[suf]!
  if (/^[eE][-+]?[0-9]+$/.test(suf)) return n * 10 ** Number(suf.slice(1))
  return undefined
}
const dns1123Label = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/
const dns1123Subdomain = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/
const dns1035Label = /^[a-z]([-a-z0-9]*[a-z0-9])?$/

// ---------------------------------------------------------------------------------------------------------------
// validation and defaulting (the parts the provisioner exercises)

function validate(d: ResourceDef, obj: KObject, old: KObject | undefined): void {
  const name = String(obj.metadata?.name ?? '')
  const causes: Cause[] = []
  const add = (field: string, reason: string, message: string) => causes.push({ reason, message, field })
  if (d.plural === 'namespaces' || d.plural === 'services') {
    const re = d.plural === 'services' ? dns1035Label : dns1123Label
    if (!re.test(name) || name.length > 63)
      add('metadata.name', 'FieldValueInvalid', `Invalid value: ${JSON.stringify(name)}: a ${d.plural === 'services' ? 'DNS-1035' : 'lowercase RFC 1123'} label must consist of lower case alphanumeric characters or '-'`)
  } else if (!dns1123Subdomain.test(name) || name.length > 253) {
    add('metadata.name', 'FieldValueInvalid', `Invalid value: ${JSON.stringify(name)}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'`)
  }
  for (const [k, v] of Object.entries(obj.metadata?.labels ?? {})) {
    if (typeof v !== 'string' || v.length > 63 || !/^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/.test(v)) add(`metadata.labels`, 'FieldValueInvalid', `Invalid value: ${JSON.stringify(v)}: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.' (label ${k})`)
  }
  const spec = obj.spec ?? {}
  if (d.plural === 'deployments' || d.plural === 'statefulsets') {
    if (typeof spec.replicas === 'number' && (spec.replicas < 0 || !Number.isInteger(spec.replicas))) add('spec.replicas', 'FieldValueInvalid', `Invalid value: ${spec.replicas}: must be greater than or equal to 0`)
    const sel = spec.selector?.matchLabels
    if (!isObj(sel) || !Object.keys(sel).length) add('spec.selector', 'FieldValueRequired', 'Required value')
    const tl = spec.template?.metadata?.labels ?? {}
    if (isObj(sel) && !matches(tl, Object.entries(sel).map(([key, v]) => ({ key, op: 'in', values: [String(v)] }))))
      add('spec.template.metadata.labels', 'FieldValueInvalid', `Invalid value: ${JSON.stringify(tl)}: \`selector\` does not match template \`labels\``)
    const containers = spec.template?.spec?.containers
    if (!Array.isArray(containers) || !containers.length) add('spec.template.spec.containers', 'FieldValueRequired', 'Required value')
    for (const [i, c] of (Array.isArray(containers) ? containers : []).entries()) {
      const f = `spec.template.spec.containers[${i}]`
      if (!c.name || !dns1123Label.test(c.name)) add(`${f}.name`, 'FieldValueInvalid', `Invalid value: ${JSON.stringify(c.name)}: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-'`)
      if (!c.image) add(`${f}.image`, 'FieldValueRequired', 'Required value')
      const req = c.resources?.requests ?? {}
      const lim = c.resources?.limits ?? {}
      for (const [kind, vals] of [['requests', req], ['limits', lim]] as const) {
        for (const [r, v] of Object.entries(vals)) {
          const q = quantity(v)
          if (q === undefined) add(`${f}.resources.${kind}[${r}]`, 'FieldValueInvalid', `Invalid value: ${JSON.stringify(v)}: quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'`)
          else if (r.includes('/') && !r.startsWith('kubernetes.io/') && !Number.isInteger(q)) add(`${f}.resources.${kind}[${r}]`, 'FieldValueInvalid', `Invalid value: ${JSON.stringify(v)}: must be an integer`)
        }
      }
      for (const [r, v] of Object.entries(req)) {
        const l = lim[r]
        if (r.includes('/') && !r.startsWith('kubernetes.io/')) {
          if (l === undefined || quantity(l) !== quantity(v)) add(`${f}.resources.requests`, 'FieldValueInvalid', `Invalid value: ${JSON.stringify(v)}: must be equal to ${r} limit of ${l ?? 0}`)
        } else if (l !== undefined && (quantity(v) ?? 0) > (quantity(l) ?? Infinity)) {
          add(`${f}.resources.requests`, 'FieldValueInvalid', `Invalid value: ${JSON.stringify(v)}: must be less than or equal to ${r} limit of ${l}`)
        }
      }
      for (const pr of ['readinessProbe', 'livenessProbe']) {
        const port = c[pr]?.httpGet?.port
        if (c[pr] && (typeof port !== 'number' || port < 1 || port > 65535) && typeof port !== 'string') add(`${f}.${pr}.httpGet.port`, 'FieldValueInvalid', `Invalid value: ${port}: must be between 1 and 65535, inclusive`)
      }
    }
    if (old && !deepEqual(old.spec?.selector, spec.selector)) add('spec.selector', 'FieldValueInvalid', `Invalid value: ${JSON.stringify(spec.selector)}: field is immutable`)
    if (d.plural === 'statefulsets') {
      if (!spec.serviceName && spec.serviceName !== '') add('spec.serviceName', 'FieldValueRequired', 'Required value')
      for (const [i, t] of (spec.volumeClaimTemplates ?? []).entries()) {
        if (quantity(t?.spec?.resources?.requests?.storage) === undefined) add(`spec.volumeClaimTemplates[${i}].spec.resources[storage]`, 'FieldValueRequired', 'Required value')
      }
      if (old) {
        const mutable = ['replicas', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy', 'minReadySeconds', 'ordinals']
        const strip = (s: KObject) => Object.fromEntries(Object.entries(s ?? {}).filter(([k]) => !mutable.includes(k)))
        if (!deepEqual(strip(old.spec), strip(spec))) {
          causes.length = 0
          add('spec', 'FieldValueForbidden', "Forbidden: updates to statefulset spec for fields other than 'replicas', 'template', and 'updateStrategy' are forbidden.")
        }
      }
    }
  }
  if (d.plural === 'services') {
    const ports = spec.ports
    if ((spec.type ?? 'ClusterIP') !== 'ExternalName' && (!Array.isArray(ports) || !ports.length)) add('spec.ports', 'FieldValueRequired', 'Required value')
    for (const [i, p] of (Array.isArray(ports) ? ports : []).entries()) {
      if (typeof p.port !== 'number' || p.port < 1 || p.port > 65535) add(`spec.ports[${i}].port`, 'FieldValueInvalid', `Invalid value: ${p.port}: must be between 1 and 65535, inclusive`)
      if (ports.length > 1 && !p.name) add(`spec.ports[${i}].name`, 'FieldValueRequired', 'Required value')
    }
    if (old?.spec?.clusterIP && spec.clusterIP && old.spec.clusterIP !== spec.clusterIP) add('spec.clusterIPs[0]', 'FieldValueInvalid', `Invalid value: []string{${JSON.stringify(spec.clusterIP)}}: may not change once set`)
  }
  if (d.plural === 'horizontalpodautoscalers') {
    const min = spec.minReplicas ?? 1
    if (!spec.scaleTargetRef?.kind) add('spec.scaleTargetRef.kind', 'FieldValueRequired', 'Required value')
    if (!spec.scaleTargetRef?.name) add('spec.scaleTargetRef.name', 'FieldValueRequired', 'Required value')
    if (min < 1) add('spec.minReplicas', 'FieldValueInvalid', `Invalid value: ${min}: must be greater than or equal to 1`)
    if (typeof spec.maxReplicas !== 'number' || spec.maxReplicas < 1) add('spec.maxReplicas', 'FieldValueInvalid', `Invalid value: ${spec.maxReplicas}: must be greater than 0`)
    else if (spec.maxReplicas < min) add('spec.maxReplicas', 'FieldValueInvalid', `Invalid value: ${spec.maxReplicas}: must be greater than or equal to \`minReplicas\``)
  }
  if (d.plural === 'persistentvolumeclaims' && quantity(spec.resources?.requests?.storage) === undefined) add('spec.resources[storage]', 'FieldValueRequired', 'Required value')
  if (causes.length) throw invalid(d, name, causes)
}

function defaultPodTemplate(t: KObject | undefined): void {
  if (!isObj(t)) return
  const s = (t.spec ??= {})
  s.restartPolicy ??= 'Always'
  s.terminationGracePeriodSeconds ??= 30
  s.dnsPolicy ??= 'ClusterFirst'
  s.securityContext ??= {}
  s.schedulerName ??= 'default-scheduler'
  for (const c of Array.isArray(s.containers) ? s.containers : []) {
    c.terminationMessagePath ??= '/dev/termination-log'
    c.terminationMessagePolicy ??= 'File'
    c.imagePullPolicy ??= /:latest$|^[^@:]*$/.test(String(c.image ?? '')) ? 'Always' : 'IfNotPresent'
    for (const p of Array.isArray(c.ports) ? c.ports : []) p.protocol ??= 'TCP'
    for (const pr of ['readinessProbe', 'livenessProbe']) {
      const probe = c[pr]
      if (!isObj(probe)) continue
      if (isObj(probe.httpGet)) probe.httpGet.scheme ??= 'HTTP'
      probe.timeoutSeconds ??= 1
      probe.periodSeconds ??= 10
      probe.successThreshold ??= 1
      probe.failureThreshold ??= 3
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// the server

type Stored = { obj: KObject; owners: Map<string, Set<string>>; ownerTimes: Map<string, string> }

/** Start a fake Kubernetes API server on 127.0.0.1 (port chosen by the OS) and write a kubeconfig for it. */
export async function startFakeKubernetesApi(o: FakeKubernetesApiOptions = {}): Promise<FakeKubernetesApi> {
  const tls = o.tls ?? true
  const readyDelayMs = o.readyDelayMs ?? 5
  const nsDeleteDelayMs = o.namespaceDeleteDelayMs ?? 20
  const store = new Map<string, Stored>()
  const key = (r: ResourceName, ns: string | undefined, name: string) => `${r}|${ns ?? ''}|${name}`
  let rv = 1000
  let ipSeq = 10
  let availability: Availability = 'up'
  let podsReady = true
  const requests: RecordedRequest[] = []
  const failures: { m: RequestMatcher; status: number; reason: string; message: string }[] = []
  const hooks: { m: RequestMatcher; fn: () => void }[] = []
  const timers = new Set<NodeJS.Timeout>()
  const sockets = new Set<Socket>()
  const hanging = new Set<ServerResponse>()
  let closed = false

  const now = () => new Date().toISOString().replace(/\.\d{3}Z$/, 'Z')
  const later = (ms: number, fn: () => void) => {
    if (closed) return
    const t = setTimeout(() => {
      timers.delete(t)
      if (!closed) fn()
    }, ms)
    timers.add(t)
  }
  const withKind = (d: ResourceDef, obj: KObject): KObject => {
    const { apiVersion: _a, kind: _k, ...rest } = obj
    return { kind: d.kind, apiVersion: apiVersionOf(d), ...rest }
  }
  const render = (d: ResourceDef, s: Stored): KObject => {
    const out = withKind(d, clone(s.obj))
    out.metadata.managedFields = [...s.owners.entries()]
      .filter(([, paths]) => paths.size)
      .map(([mo, paths]) => {
        const [manager, operation] = mo.split('|')
        return { manager, operation, apiVersion: apiVersionOf(d), time: s.ownerTimes.get(mo), fieldsType: 'FieldsV1', fieldsV1: fieldsV1(paths) }
      })
    return out
  }
  /** Give `paths` to `manager` (taking them from everyone else); an applier owns exactly what it last applied. */
  const take = (s: Stored, manager: string, paths: string[], replace: boolean) => {
    for (const [mo, set] of s.owners) if (mo !== manager) for (const p of paths) set.delete(p)
    const mine = replace ? new Set<string>() : (s.owners.get(manager) ?? new Set<string>())
    for (const p of paths) mine.add(p)
    s.owners.set(manager, mine)
    s.ownerTimes.set(manager, now())
  }

  const applyDefaults = (d: ResourceDef, obj: KObject) => {
    const spec = (obj.spec ??= {})
    switch (d.plural) {
      case 'namespaces':
        obj.metadata.labels = { ...(obj.metadata.labels ?? {}), 'kubernetes.io/metadata.name': obj.metadata.name }
        spec.finalizers ??= ['kubernetes']
        obj.status ??= { phase: 'Active' }
        break
      case 'deployments':
        spec.replicas ??= 1
        spec.strategy ??= { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: '25%', maxSurge: '25%' } }
        spec.revisionHistoryLimit ??= 10
        spec.progressDeadlineSeconds ??= 600
        defaultPodTemplate(spec.template)
        obj.status ??= {}
        break
      case 'statefulsets':
        spec.replicas ??= 1
        spec.podManagementPolicy ??= 'OrderedReady'
        spec.updateStrategy ??= { type: 'RollingUpdate', rollingUpdate: { partition: 0 } }
        spec.revisionHistoryLimit ??= 10
        spec.persistentVolumeClaimRetentionPolicy ??= { whenDeleted: 'Retain', whenScaled: 'Retain' }
        for (const t of spec.volumeClaimTemplates ?? []) {
          t.apiVersion ??= 'v1'
          t.kind ??= 'PersistentVolumeClaim'
          t.spec.volumeMode ??= 'Filesystem'
          t.status ??= { phase: 'Pending' }
        }
        defaultPodTemplate(spec.template)
        obj.status ??= { replicas: 0, availableReplicas: 0 }
        break
      case 'services':
        spec.type ??= 'ClusterIP'
        if (!spec.clusterIP) {
          spec.clusterIP = `10.96.${Math.floor(ipSeq / 250)}.${(ipSeq++ % 250) + 1}`
          spec.clusterIPs = [spec.clusterIP]
        }
        spec.ipFamilies ??= ['IPv4']
        spec.ipFamilyPolicy ??= 'SingleStack'
        spec.sessionAffinity ??= 'None'
        spec.internalTrafficPolicy ??= 'Cluster'
        for (const p of spec.ports ?? []) {
          p.protocol ??= 'TCP'
          p.targetPort ??= p.port
          if (spec.type === 'LoadBalancer' || spec.type === 'NodePort') p.nodePort ??= 30000 + (ipSeq++ % 2767)
        }
        obj.status ??= { loadBalancer: {} }
        break
      case 'persistentvolumeclaims':
        spec.volumeMode ??= 'Filesystem'
        spec.storageClassName ??= 'standard'
        obj.status ??= { phase: 'Pending' }
        break
      case 'horizontalpodautoscalers':
        spec.minReplicas ??= 1
        obj.status ??= { currentReplicas: 0, desiredReplicas: 0 }
        break
    }
  }

  const namespaceGate = (d: ResourceDef, ns: string | undefined) => {
    if (!d.namespaced) return
    const n = store.get(key('namespaces', undefined, ns!))
    if (!n) throw notFound(defOf('namespaces'), ns!)
    if (n.obj.metadata.deletionTimestamp)
      throw plainStatus(403, 'Forbidden', `${qualified(d)} is forbidden: unable to create new content in namespace ${ns} because it is being terminated`, { kind: d.plural })
  }

  /** Write `next` as the stored object (create when `prev` is undefined); returns the stored record. */
  const write = (d: ResourceDef, ns: string | undefined, next: KObject, prev: Stored | undefined, manager: string, operation: 'Apply' | 'Update', appliedPaths?: string[]): Stored => {
    next.metadata ??= {}
    next.metadata.name = prev?.obj.metadata.name ?? next.metadata.name
    if (d.namespaced) next.metadata.namespace = ns
    else delete next.metadata.namespace
    applyDefaults(d, next)
    validate(d, next, prev?.obj)
    const meta = next.metadata
    delete meta.managedFields
    if (prev) {
      meta.uid = prev.obj.metadata.uid
      meta.creationTimestamp = prev.obj.metadata.creationTimestamp
      if (prev.obj.metadata.deletionTimestamp) meta.deletionTimestamp = prev.obj.metadata.deletionTimestamp
      if (d.generation) meta.generation = (prev.obj.metadata.generation ?? 1) + (deepEqual(prev.obj.spec, next.spec) ? 0 : 1)
      next.status = prev.obj.status
      if (deepEqual(withKind(d, prev.obj), withKind(d, { ...next, metadata: { ...meta, resourceVersion: prev.obj.metadata.resourceVersion } }))) {
        if (appliedPaths) take(prev, `${manager}|${operation}`, appliedPaths, true)
        return prev // a no-op write keeps the resourceVersion, like the real server
      }
    } else {
      meta.uid = randomUUID()
      meta.creationTimestamp = now()
      if (d.generation) meta.generation = 1
    }
    delete meta.managedFields
    delete next.apiVersion
    delete next.kind
    meta.resourceVersion = String(++rv)
    const s: Stored = prev ?? { obj: next, owners: new Map(), ownerTimes: new Map() }
    const changed = appliedPaths ?? leafPaths(next).filter((p) => !prev || !deepEqual(getPath(prev.obj, p), getPath(next, p)))
    s.obj = next
    take(s, `${manager}|${operation}`, changed, !!appliedPaths)
    store.set(key(d.plural, ns, meta.name), s)
    react(d, ns, meta.name)
    return s
  }

  const setStatus = (d: ResourceDef, s: Stored, status: KObject) => {
    if (deepEqual(s.obj.status, status)) return
    s.obj.status = status
    s.obj.metadata.resourceVersion = String(++rv)
  }

  // ---- controllers -------------------------------------------------------------------------------------------
  const react = (d: ResourceDef, ns: string | undefined, name: string) => {
    if (d.plural === 'deployments' || d.plural === 'statefulsets') {
      later(readyDelayMs, () => reconcileWorkload(d, ns!, name))
      for (const h of list('horizontalpodautoscalers', ns)) if (h.spec?.scaleTargetRef?.name === name && h.spec.scaleTargetRef.kind === d.kind) later(readyDelayMs, () => reconcileHpa(ns!, h.metadata.name))
    }
    if (d.plural === 'horizontalpodautoscalers') later(readyDelayMs, () => reconcileHpa(ns!, name))
    if (d.plural === 'services' && store.get(key('services', ns, name))?.obj.spec.type === 'LoadBalancer') {
      later(readyDelayMs, () => {
        const s = store.get(key('services', ns, name))
        if (s && s.obj.spec.type === 'LoadBalancer') setStatus(d, s, { loadBalancer: { ingress: [{ ip: '203.0.113.10', ipMode: 'VIP' }] } })
      })
    }
  }
  const reconcileWorkload = (d: ResourceDef, ns: string, name: string) => {
    const s = store.get(key(d.plural, ns, name))
    if (!s) return
    const n: number = s.obj.spec.replicas ?? 1
    const ready = podsReady ? n : 0
    const st: KObject = { observedGeneration: s.obj.metadata.generation }
    if (n) st.replicas = n
    if (n) st.updatedReplicas = n
    if (ready) st.readyReplicas = ready
    if (ready) st.availableReplicas = ready
    if (n - ready) st.unavailableReplicas = n - ready
    if (d.plural === 'statefulsets') {
      delete st.unavailableReplicas
      st.replicas = n
      st.currentReplicas = n
      st.availableReplicas = ready
      st.currentRevision = st.updateRevision = `${name}-${s.obj.metadata.generation}`
      st.collisionCount = 0
    }
    const t = now()
    st.conditions = [
      { type: 'Available', status: ready === n ? 'True' : 'False', reason: ready === n ? 'MinimumReplicasAvailable' : 'MinimumReplicasUnavailable', lastUpdateTime: t, lastTransitionTime: t },
      { type: 'Progressing', status: 'True', reason: 'NewReplicaSetAvailable', lastUpdateTime: t, lastTransitionTime: t },
    ]
    const prevConds = s.obj.status?.conditions
    if (prevConds && deepEqual({ ...s.obj.status, conditions: undefined }, { ...st, conditions: undefined })) return
    setStatus(d, s, st)
    if (d.plural === 'statefulsets') {
      for (const t of s.obj.spec.volumeClaimTemplates ?? []) {
        for (let i = 0; i < n; i++) {
          const pvcName = `${t.metadata.name}-${name}-${i}`
          if (store.has(key('persistentvolumeclaims', ns, pvcName))) continue
          const pvc = write(defOf('persistentvolumeclaims'), ns, {
            metadata: { name: pvcName, labels: { ...(t.metadata.labels ?? {}), ...(s.obj.spec.selector?.matchLabels ?? {}) } },
            spec: { ...clone(t.spec) },
          }, undefined, 'kube-controller-manager', 'Update')
          setStatus(defOf('persistentvolumeclaims'), pvc, { phase: 'Bound', accessModes: pvc.obj.spec.accessModes, capacity: { storage: pvc.obj.spec.resources.requests.storage } })
        }
      }
    }
  }
  const reconcileHpa = (ns: string, name: string) => {
    const h = store.get(key('horizontalpodautoscalers', ns, name))
    if (!h) return
    const ref = h.obj.spec.scaleTargetRef
    const td = defs.find((d) => d.kind === ref.kind && d.group === 'apps')
    const t = td && store.get(key(td.plural, ns, ref.name))
    if (!td || !t) return setStatus(defOf('horizontalpodautoscalers'), h, { currentReplicas: 0, desiredReplicas: 0, conditions: [{ type: 'AbleToScale', status: 'False', reason: 'FailedGetScale' }] })
    const current: number = t.obj.spec.replicas ?? 1
    if (current === 0) {
      return setStatus(defOf('horizontalpodautoscalers'), h, { currentReplicas: 0, desiredReplicas: 0, conditions: [{ type: 'ScalingActive', status: 'False', reason: 'ScalingDisabled' }] })
    }
    const desired = Math.min(h.obj.spec.maxReplicas, Math.max(h.obj.spec.minReplicas ?? 1, current))
    if (desired !== current) {
      const next = clone(t.obj)
      next.spec.replicas = desired
      write(td, ns, next, t, 'kube-controller-manager', 'Update')
    }
    setStatus(defOf('horizontalpodautoscalers'), h, { currentReplicas: current, desiredReplicas: desired, ...(desired !== current && { lastScaleTime: now() }) })
  }
  const deleteNamespace = (name: string) => {
    const s = store.get(key('namespaces', undefined, name))
    if (!s || s.obj.metadata.deletionTimestamp) return s
    s.obj.metadata.deletionTimestamp = now()
    s.obj.status = { phase: 'Terminating' }
    s.obj.metadata.resourceVersion = String(++rv)
    later(nsDeleteDelayMs, () => {
      for (const k of [...store.keys()]) if (k.split('|')[1] === name) store.delete(k)
      store.delete(key('namespaces', undefined, name))
    })
    return s
  }

  // ---- public helpers -----------------------------------------------------------------------------------------
  function list(resource: ResourceName, ns?: string): KObject[] {
    const d = defOf(resource)
    return [...store.entries()]
      .filter(([k]) => k.startsWith(`${resource}|`) && (ns === undefined || k.split('|')[1] === ns))
      .map(([, s]) => render(d, s))
  }
  const get = (resource: ResourceName, ns: string | undefined, name: string) => {
    const s = store.get(key(resource, ns, name))
    return s && render(defOf(resource), s)
  }

  // ---- HTTP ---------------------------------------------------------------------------------------------------
  const parsePath = (path: string): { d: ResourceDef; ns?: string; name?: string; sub?: string } | undefined => {
    const m = path.match(/^\/(?:api\/(v1)|apis\/([^/]+)\/([^/]+))\/(.+?)\/?$/)
    if (!m) return undefined
    const group = m[1] ? '' : m[2]!
    const version = m[1] ?? m[3]!
    const seg = m[4]!.split('/').map(decodeURIComponent)
    const find = (plural: string | undefined) => defs.find((x) => x.plural === plural && x.group === group && x.version === version)
    if (seg[0] === 'namespaces' && seg.length >= 3 && find(seg[2])?.namespaced) {
      if (seg.length > 5) return undefined
      return { d: find(seg[2])!, ns: seg[1]!, ...(seg[3] !== undefined && { name: seg[3] }), ...(seg[4] !== undefined && { sub: seg[4] }) }
    }
    const d = find(seg[0])
    if (!d || seg.length > 2) return undefined
    if (d.namespaced && seg.length > 1) return undefined
    return { d, ...(seg[1] !== undefined && { name: seg[1] }) }
  }

  const scaleOf = (d: ResourceDef, s: Stored): KObject => ({
    kind: 'Scale',
    apiVersion: 'autoscaling/v1',
    metadata: { name: s.obj.metadata.name, namespace: s.obj.metadata.namespace, uid: s.obj.metadata.uid, resourceVersion: s.obj.metadata.resourceVersion, creationTimestamp: s.obj.metadata.creationTimestamp },
    spec: { replicas: s.obj.spec.replicas },
    status: {
      replicas: s.obj.status?.replicas ?? 0,
      selector: Object.entries(s.obj.spec.selector?.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`).join(','),
    },
  })

  const handle = (method: string, url: URL, headers: IncomingMessage['headers'], raw: string): { status: number; body: KObject } => {
    const path = url.pathname
    if (method === 'GET' && path === '/version') return { status: 200, body: { major: '1', minor: '34', gitVersion: 'v1.34.0-fake', platform: 'linux/amd64' } }
    const route = parsePath(path)
    if (!route) throw plainStatus(404, 'NotFound', 'the server could not find the requested resource', {})
    const { d, ns, name, sub } = route
    const manager = url.searchParams.get('fieldManager') ?? String(headers['user-agent'] ?? 'unknown').split('/')[0]!
    const body = (): KObject => {
      if (!raw) throw plainStatus(400, 'BadRequest', 'the body of the request was in an unknown format - accepted media types include: application/json, application/yaml')
      try {
        const b = JSON.parse(raw)
        if (!isObj(b)) throw new Error('not an object')
        return b
      } catch {
        throw plainStatus(400, 'BadRequest', 'the body of the request was in an unknown format (this fake accepts JSON bodies only)')
      }
    }
    const checkKind = (b: KObject, expectKind = d.kind, expectApi = apiVersionOf(d)) => {
      if ((b.kind && b.kind !== expectKind) || (b.apiVersion && b.apiVersion !== expectApi))
        throw plainStatus(400, 'BadRequest', `the API version in the data (${b.apiVersion}) does not match the expected API version (${expectApi})`)
      if (b.metadata?.namespace && ns && b.metadata.namespace !== ns)
        throw plainStatus(400, 'BadRequest', 'the namespace of the provided object does not match the namespace sent on the request')
      if (name && b.metadata?.name && b.metadata.name !== name) throw plainStatus(400, 'BadRequest', 'the name of the object does not match the name on the URL')
    }

    if (!name) {
      if (method === 'GET') {
        const reqs = parseSelector(url.searchParams.get('labelSelector') ?? '')
        const items = [...store.entries()]
          .filter(([k]) => k.startsWith(`${d.plural}|`) && (ns === undefined || k.split('|')[1] === ns))
          .map(([, s]) => s)
          .filter((s) => matches(s.obj.metadata.labels, reqs))
          .sort((a, b) => (a.obj.metadata.namespace ?? '').localeCompare(b.obj.metadata.namespace ?? '') || a.obj.metadata.name.localeCompare(b.obj.metadata.name))
          .map((s) => {
            const { kind: _k, apiVersion: _a, ...rest } = render(d, s)
            return rest // list items carry no kind/apiVersion
          })
        return { status: 200, body: { kind: `${d.kind}List`, apiVersion: apiVersionOf(d), metadata: { resourceVersion: String(rv) }, items } }
      }
      if (method === 'POST') {
        const b = body()
        checkKind(b)
        const n = b.metadata?.name
        if (!n) throw invalid(d, '', [{ reason: 'FieldValueRequired', message: 'Required value: name or generateName is required', field: 'metadata.name' }])
        namespaceGate(d, ns)
        if (store.has(key(d.plural, ns, n))) throw alreadyExists(d, n)
        return { status: 201, body: render(d, write(d, ns, clone(b), undefined, manager, 'Update')) }
      }
      throw plainStatus(405, 'MethodNotAllowed', `the server does not allow this method on the requested resource`)
    }

    const k = key(d.plural, ns, name)
    const cur = store.get(k)
    if (sub) {
      if (sub !== 'scale' || (d.plural !== 'deployments' && d.plural !== 'statefulsets')) throw plainStatus(404, 'NotFound', 'the server could not find the requested resource', {})
      if (!cur) throw notFound(d, name)
      if (method === 'GET') return { status: 200, body: scaleOf(d, cur) }
      let replicas: unknown
      if (method === 'PUT') {
        const b = body()
        checkKind(b, 'Scale', 'autoscaling/v1')
        if (b.metadata?.resourceVersion && b.metadata.resourceVersion !== cur.obj.metadata.resourceVersion) throw conflict(d, name)
        replicas = b.spec?.replicas
      } else if (method === 'PATCH' && (headers['content-type'] ?? '').startsWith('application/merge-patch+json')) {
        replicas = (mergePatch(scaleOf(d, cur), body()) as KObject).spec?.replicas
      } else throw plainStatus(method === 'PATCH' ? 415 : 405, method === 'PATCH' ? 'UnsupportedMediaType' : 'MethodNotAllowed', 'not supported by this fake')
      if (typeof replicas !== 'number' || !Number.isInteger(replicas) || replicas < 0)
        throw invalid({ ...d, kind: 'Scale', group: 'autoscaling' }, name, [{ reason: 'FieldValueInvalid', message: `Invalid value: ${replicas}: must be greater than or equal to 0`, field: 'spec.replicas' }])
      const next = clone(cur.obj)
      next.spec.replicas = replicas
      return { status: 200, body: scaleOf(d, write(d, ns, next, cur, manager, 'Update')) }
    }

    switch (method) {
      case 'GET':
        if (!cur) throw notFound(d, name)
        return { status: 200, body: render(d, cur) }
      case 'PUT': {
        if (!cur) throw notFound(d, name)
        const b = body()
        checkKind(b)
        const want = b.metadata?.resourceVersion
        if (want !== undefined && want !== '' && want !== cur.obj.metadata.resourceVersion) throw conflict(d, name)
        const next = clone(b)
        next.status = cur.obj.status
        return { status: 200, body: render(d, write(d, ns, next, cur, manager, 'Update')) }
      }
      case 'PATCH': {
        const ct = String(headers['content-type'] ?? '').split(';')[0]!.trim()
        if (ct === 'application/merge-patch+json') {
          if (!cur) throw notFound(d, name)
          const next = mergePatch(render(d, cur), body()) as KObject
          checkKind(next)
          if (next.metadata?.resourceVersion && next.metadata.resourceVersion !== cur.obj.metadata.resourceVersion) throw conflict(d, name)
          return { status: 200, body: render(d, write(d, ns, next, cur, manager, 'Update')) }
        }
        if (ct === 'application/apply-patch+yaml') {
          const fm = url.searchParams.get('fieldManager')
          if (!fm) throw plainStatus(400, 'BadRequest', 'PATCH request with apply type must set fieldManager (?fieldManager=...)')
          const force = url.searchParams.get('force') === 'true'
          const b = body()
          if (!b.apiVersion || !b.kind) throw plainStatus(400, 'BadRequest', 'apply patches must set apiVersion and kind')
          checkKind(b)
          const applied = leafPaths(b)
          const me = `${fm}|Apply`
          if (!cur) {
            namespaceGate(d, ns)
            const created = write(d, ns, clone({ ...b, metadata: { ...b.metadata, name } }), undefined, fm, 'Apply', applied)
            return { status: 201, body: render(d, created) }
          }
          if (!force) {
            const clashes: KObject[] = []
            for (const p of applied) {
              for (const [mo, set] of cur.owners) {
                if (mo !== me && set.has(p) && !subsetOf(getPath(b, p), getPath(cur.obj, p))) clashes.push({ reason: 'FieldManagerConflict', message: `conflict with "${mo.split('|')[0]}" using ${apiVersionOf(d)}`, field: `.${p}` })
              }
            }
            if (clashes.length) throw conflict(d, name, `Apply failed with ${clashes.length} conflict${clashes.length > 1 ? 's' : ''}: ${clashes.map((c) => `${c.message}: ${c.field}`).join(', ')}`, clashes)
          }
          const next = clone(cur.obj)
          const othersOwn = (p: string) => [...cur.owners.entries()].some(([mo, set]) => mo !== me && set.has(p))
          for (const p of cur.owners.get(me) ?? []) if (!applied.includes(p) && !othersOwn(p)) deletePath(next, p)
          const { status: _s, ...spec } = b
          const merged = mergePatch(next, stripNulls(spec)) as KObject
          merged.status = cur.obj.status
          return { status: 200, body: render(d, write(d, ns, merged, cur, fm, 'Apply', applied)) }
        }
        throw plainStatus(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - this fake accepts application/merge-patch+json and application/apply-patch+yaml, got ${JSON.stringify(ct)}`)
      }
      case 'DELETE': {
        if (!cur) throw notFound(d, name)
        if (d.plural === 'namespaces') return { status: 200, body: render(d, deleteNamespace(name)!) }
        store.delete(k)
        if (d.plural === 'deployments' || d.plural === 'statefulsets') for (const h of list('horizontalpodautoscalers', ns)) later(readyDelayMs, () => reconcileHpa(ns!, h.metadata.name))
        return { status: 200, body: { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details: { name, ...(d.group && { group: d.group }), kind: d.plural, uid: cur.obj.metadata.uid } } }
      }
    }
    throw plainStatus(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource')
  }

  const matchesReq = (m: RequestMatcher, method: string, path: string) => (!m.method || m.method === method) && (!m.path || m.path.test(path))

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const method = req.method ?? 'GET'
      const url = new URL(req.url ?? '/', 'http://fake')
      const record = (status: number) =>
        requests.push({ method, path: url.pathname, query: url.search, contentType: req.headers['content-type'], fieldManager: url.searchParams.get('fieldManager'), status })
      if (availability === 'reset') {
        record(0)
        req.socket.destroy()
        return
      }
      if (availability === 'hang') {
        record(0)
        hanging.add(res)
        res.on('close', () => hanging.delete(res))
        return
      }
      let status: number
      let body: KObject
      try {
        if (!tls && req.headers.authorization !== 'Bearer fake-kubernetes-token') throw plainStatus(401, 'Unauthorized', 'Unauthorized')
        if (availability === 'unavailable') throw plainStatus(503, 'ServiceUnavailable', 'the server is currently unable to handle the request')
        const fi = failures.findIndex((f) => matchesReq(f.m, method, url.pathname))
        if (fi >= 0) {
          const f = failures.splice(fi, 1)[0]!
          throw plainStatus(f.status, f.reason, f.message)
        }
        const hi = hooks.findIndex((h) => matchesReq(h.m, method, url.pathname))
        if (hi >= 0) hooks.splice(hi, 1)[0]!.fn()
        ;({ status, body } = handle(method, url, req.headers, Buffer.concat(chunks).toString('utf8')))
      } catch (err) {
        if (!(err instanceof ApiError)) {
          status = 500
          body = plainStatus(500, 'InternalError', `fake apiserver failure: ${(err as Error).message}`).body
        } else {
          status = err.status
          body = err.body
        }
      }
      record(status)
      const text = JSON.stringify(body)
      res.writeHead(status, {
        'Content-Type': 'application/json',
        'Cache-Control': 'no-cache, private',
        'Audit-Id': randomUUID(),
        'X-Kubernetes-Pf-Flowschema-Uid': 'fake-flowschema',
        'X-Kubernetes-Pf-Prioritylevel-Uid': 'fake-prioritylevel',
        'Content-Length': Buffer.byteLength(text),
      })
      res.end(text)
    })
  }

  const pki = tls ? testPki() : undefined
  const server: Server = pki
    ? createHttpsServer({ key: pki.serverKey, cert: pki.serverCert, ca: pki.caCert, requestCert: true, rejectUnauthorized: true }, onRequest)
    : createHttpServer(onRequest)
  server.on(pki ? 'secureConnection' : 'connection', (s: Socket) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const port = (server.address() as AddressInfo).port
  const url = `${pki ? 'https' : 'http'}://127.0.0.1:${port}`
  const kubeconfig = writeKubeconfig(kubeconfigFor(url, pki))

  // what a fresh cluster already holds, from the recorded responses
  const seedRecorded = () => {
    const nsDef = defOf('namespaces')
    const dflt = fixture('namespace-get.json')
    delete dflt.metadata.selfLink
    // recorded identity (uid, creationTimestamp, generation) is kept; resourceVersions are this server's own
    const keep = (s: Stored, recordedMeta: KObject) => {
      for (const f of ['uid', 'creationTimestamp', 'generation']) if (recordedMeta[f] !== undefined) s.obj.metadata[f] = recordedMeta[f]
      return s
    }
    keep(write(nsDef, undefined, clone(dflt), undefined, 'kube-apiserver', 'Update'), dflt.metadata)
    write(nsDef, undefined, { metadata: { name: 'kube-system' } }, undefined, 'kube-apiserver', 'Update')
    const svc = fixture('service-list.gke.trimmed.json').items[0]
    delete svc.metadata.managedFields
    keep(write(defOf('services'), svc.metadata.namespace, clone(svc), undefined, 'kube-apiserver', 'Update'), svc.metadata)
    for (const dep of fixture('deployment-list.gke.trimmed.json').items as KObject[]) {
      delete dep.metadata.managedFields
      const s = keep(write(defOf('deployments'), dep.metadata.namespace, clone({ metadata: dep.metadata, spec: dep.spec }), undefined, 'kubectl-client-side-apply', 'Update'), dep.metadata)
      s.obj.status = dep.status
      s.obj.status.observedGeneration = s.obj.metadata.generation
    }
  }
  seedRecorded()

  return {
    url,
    kubeconfigPath: kubeconfig.path,
    requests,
    get,
    list,
    seed(resource, obj) {
      const d = defOf(resource)
      const ns = d.namespaced ? obj.metadata?.namespace : undefined
      if (store.has(key(resource, ns, obj.metadata?.name))) throw alreadyExists(d, obj.metadata?.name)
      return render(d, write(d, ns, clone(obj), undefined, 'seed', 'Update'))
    },
    mutate(resource, ns, name, change) {
      const d = defOf(resource)
      const cur = store.get(key(resource, d.namespaced ? ns : undefined, name))
      if (!cur) throw notFound(d, name)
      const next = clone(cur.obj)
      change(next)
      write(d, d.namespaced ? ns : undefined, next, cur, 'another-writer', 'Update')
    },
    setAvailability(a) {
      availability = a
    },
    hangingRequests: () => hanging.size,
    setPodsReady(ready) {
      podsReady = ready
      for (const d of [defOf('deployments'), defOf('statefulsets')]) for (const obj of list(d.plural)) later(readyDelayMs, () => reconcileWorkload(d, obj.metadata.namespace, obj.metadata.name))
    },
    failNext(m, status, reason, message) {
      failures.push({ m, status, reason, message })
    },
    beforeNext(m, fn) {
      hooks.push({ m, fn })
    },
    async close() {
      closed = true
      for (const t of timers) clearTimeout(t)
      for (const s of sockets) s.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
      kubeconfig.remove()
    },
  }
}

function stripNulls(x: KObject): KObject {
  // an apply body's explicit null means "no opinion" here; it must not become a merge-patch deletion
  const out: KObject = {}
  for (const [k, v] of Object.entries(x)) if (v !== null) out[k] = isObj(v) ? stripNulls(v) : v
  return out
}
