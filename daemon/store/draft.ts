/**
 * Copy-on-write drafts: an update works on a view of the committed state (plus the changes of the updates before it
 * in the same group commit) and records what it changed. Reading a service costs no copy; the first write to a
 * service clones that one record. A batch therefore writes only the rows it changed and never copies the state.
 */
import type { Cursor, ServiceRecord, State } from '../state.js'

/** What an update (or a batch of them) changed; `null` = deleted. */
export type Changes = {
  services: Map<string, ServiceRecord | null>
  processed: Map<string, string | null>
  cursor?: { value: Cursor | undefined }
}

export const emptyChanges = (): Changes => ({ services: new Map(), processed: new Map() })

export const isEmpty = (c: Changes): boolean => !c.services.size && !c.processed.size && !c.cursor

/** Move the changes of `child` (one update that succeeded) into `batch`. */
export function mergeChanges(batch: Changes, child: Changes): void {
  for (const [k, v] of child.services) batch.services.set(k, v)
  for (const [k, v] of child.processed) batch.processed.set(k, v)
  if (child.cursor) batch.cursor = child.cursor
}

/**
 * `state.processed[idsBelow](floor)`: the ids of processed events recorded below block `floor`, found through a
 * sorted index instead of a scan of every id (intake prunes with it after every delivery).
 */
export const idsBelow: unique symbol = Symbol('idsBelow')
export type ProcessedWithIndex = Record<string, string> & { [idsBelow]?: (floor: bigint) => string[] }

/** Processed event ids sorted by block, appended in (mostly) increasing order; deletions are skipped lazily. */
export type ProcessedIndex = {
  add(id: string, block: string): void
  /** Ids recorded below `floor` that `current` still holds at the same block. */
  below(floor: bigint, current: (id: string) => string | undefined): string[]
  /** Drop the leading entries `processed` no longer holds. */
  compact(processed: Record<string, string>): void
  readonly size: number
}

export function createProcessedIndex(processed: Record<string, string>): ProcessedIndex {
  let ids: string[] = []
  let blocks: number[] = []
  let head = 0
  const entries = Object.entries(processed).sort((a, b) => Number(a[1]) - Number(b[1]))
  for (const [id, b] of entries) {
    ids.push(id)
    blocks.push(Number(b))
  }
  return {
    get size() {
      return ids.length - head
    },
    add(id, block) {
      const b = Number(block)
      if (ids.length === head || b >= blocks[blocks.length - 1]!) {
        ids.push(id)
        blocks.push(b)
        return
      }
      // out of order (a reorg re-applied an older block): binary search the place
      let lo = head
      let hi = ids.length
      while (lo < hi) {
        const mid = (lo + hi) >> 1
        if (blocks[mid]! <= b) lo = mid + 1
        else hi = mid
      }
      ids.splice(lo, 0, id)
      blocks.splice(lo, 0, b)
    },
    below(floor, current) {
      const f = Number(floor)
      const out: string[] = []
      for (let i = head; i < ids.length && blocks[i]! < f; i++) {
        const v = current(ids[i]!)
        if (v !== undefined && Number(v) === blocks[i]) out.push(ids[i]!)
      }
      return out
    },
    compact(p) {
      while (head < ids.length && Number(p[ids[head]!] ?? NaN) !== blocks[head]) head++
      if (head > 1024 && head * 2 > ids.length) {
        ids = ids.slice(head)
        blocks = blocks.slice(head)
        head = 0
      }
    },
  }
}

/** A read-only view of the state an update starts from. */
export type View = {
  service(id: string): ServiceRecord | undefined
  serviceIds(): string[]
  processed(id: string): string | undefined
  processedIds(): string[]
  processedBelow(floor: bigint): string[]
  cursor(): Cursor | undefined
}

/** The committed read model as a view. */
export function committedView(state: State, index: ProcessedIndex): View {
  return {
    service: (id) => (Object.hasOwn(state.services, id) ? state.services[id] : undefined),
    serviceIds: () => Object.keys(state.services),
    processed: (id) => (Object.hasOwn(state.processed, id) ? state.processed[id] : undefined),
    processedIds: () => Object.keys(state.processed),
    processedBelow: (floor) => index.below(floor, (id) => (Object.hasOwn(state.processed, id) ? state.processed[id] : undefined)),
    cursor: () => state.cursor,
  }
}

/** `parent` with `changes` laid over it. */
export function overlayView(parent: View, changes: Changes): View {
  const service = (id: string) => {
    const c = changes.services.get(id)
    return c === undefined ? parent.service(id) : (c ?? undefined)
  }
  const processed = (id: string) => {
    const c = changes.processed.get(id)
    return c === undefined ? parent.processed(id) : (c ?? undefined)
  }
  const merged = (base: string[], own: Map<string, unknown>, has: (id: string) => boolean) => {
    if (!own.size) return base
    const out = base.filter((id) => !own.has(id) || own.get(id) !== null)
    for (const [id, v] of own) if (v !== null && !has(id)) out.push(id)
    return out
  }
  return {
    service,
    serviceIds: () => merged(parent.serviceIds(), changes.services, (id) => parent.service(id) !== undefined),
    processed,
    processedIds: () => merged(parent.processedIds(), changes.processed, (id) => parent.processed(id) !== undefined),
    processedBelow(floor) {
      const out = parent.processedBelow(floor).filter((id) => !changes.processed.has(id))
      for (const [id, b] of changes.processed) if (b !== null && BigInt(b) < floor) out.push(id)
      return out
    },
    cursor: () => (changes.cursor ? changes.cursor.value : parent.cursor()),
  }
}

// Views are proxies over dummy targets; one shared handler per kind finds its context through the target, so a view
// costs one small object and one proxy (no closures per view).
type RecordCtx = { id: string; orig: ServiceRecord; changes: Changes; detached?: ServiceRecord; nodes?: Map<string, object> }
type NodeMeta = { rec: RecordCtx; path: readonly PropertyKey[] }
const META: unique symbol = Symbol('draft view')
type Target = { [META]: NodeMeta }
const metaOf = (t: object): NodeMeta => (t as Target)[META]

/**
 * A deep copy of a record (plain JSON-like data: objects, arrays, strings, numbers, booleans), several times faster
 * than structuredClone, which every first write to a record paid; anything else is left to structuredClone.
 */
export function clonePlain<T>(v: T): T {
  if (v === null || typeof v !== 'object') return v
  if (Array.isArray(v)) {
    const out = new Array<unknown>(v.length)
    for (let i = 0; i < v.length; i++) out[i] = clonePlain(v[i])
    return out as T
  }
  const proto = Object.getPrototypeOf(v)
  if (proto !== Object.prototype && proto !== null) return structuredClone(v)
  const out: Record<string, unknown> = {}
  for (const k of Object.keys(v)) out[k] = clonePlain((v as Record<string, unknown>)[k])
  return out as T
}

const recordCurrent = (r: RecordCtx): ServiceRecord => r.changes.services.get(r.id) ?? r.orig
const recordCopied = (r: RecordCtx): boolean => !!r.changes.services.get(r.id)
function recordWritable(r: RecordCtx): ServiceRecord {
  const c = r.changes.services.get(r.id)
  if (c) return c
  if (c === null) return (r.detached ??= clonePlain(r.orig)) // deleted meanwhile: writes reach nothing
  const copy = clonePlain(r.orig)
  r.changes.services.set(r.id, copy)
  return copy
}

const resolve = (root: unknown, path: readonly PropertyKey[]): unknown => {
  let o = root
  for (const k of path) {
    if (o === null || typeof o !== 'object') return undefined
    o = (o as Record<PropertyKey, unknown>)[k]
  }
  return o
}
const isObj = (o: unknown): o is Record<PropertyKey, unknown> => o !== null && typeof o === 'object'

function nodeView(rec: RecordCtx, path: readonly PropertyKey[], sample: object): object {
  let key: string | undefined
  if (path.length) {
    key = path.length === 1 ? String(path[0]) : path.map(String).join('\u0000')
    const known = rec.nodes?.get(key)
    if (known) return known
  }
  const target = (Array.isArray(sample) ? [] : {}) as unknown as Target
  target[META] = { rec, path }
  const proxy = new Proxy(target, nodeHandler)
  if (key !== undefined) (rec.nodes ??= new Map()).set(key, proxy)
  return proxy
}

// while the record is not copied, nested objects are views too; once copied, the copy's own objects are handed out
const wrap = (m: NodeMeta, p: PropertyKey, v: unknown): unknown => (isObj(v) && !recordCopied(m.rec) ? nodeView(m.rec, [...m.path, p], v) : v)
const at = (m: NodeMeta) => resolve(recordCurrent(m.rec), m.path)
const writableAt = (t: object) => {
  const m = metaOf(t)
  return resolve(recordWritable(m.rec), m.path)
}

const nodeHandler: ProxyHandler<object> = {
  get(t, p) {
    const m = metaOf(t)
    if (p === META) return m
    const o = at(m)
    return isObj(o) ? wrap(m, p, Reflect.get(o, p)) : undefined
  },
  set(t, p, v) {
    const o = writableAt(t)
    if (!isObj(o)) throw new TypeError(`cannot set ${String(p)} of a missing value`)
    return Reflect.set(o, p, detach(v))
  },
  deleteProperty(t, p) {
    const o = writableAt(t)
    return isObj(o) ? Reflect.deleteProperty(o, p) : true
  },
  has(t, p) {
    const o = at(metaOf(t))
    return isObj(o) && Reflect.has(o, p)
  },
  ownKeys(t) {
    const o = at(metaOf(t))
    return isObj(o) ? Reflect.ownKeys(o) : []
  },
  getOwnPropertyDescriptor(t, p) {
    const m = metaOf(t)
    const o = at(m)
    const d = isObj(o) ? Reflect.getOwnPropertyDescriptor(o, p) : undefined
    if (d && 'value' in d) d.value = wrap(m, p, d.value)
    return d
  },
  defineProperty(t, p, d) {
    const o = writableAt(t)
    return isObj(o) && Reflect.defineProperty(o, p, d)
  },
}

/** A value about to be stored: views taken from a draft become plain copies of what they show. */
function detach<T>(v: T, depth = 0): T {
  if (v === null || typeof v !== 'object') return v
  const meta = (v as Partial<Target>)[META]
  if (meta) return clonePlain(at(meta)) as T
  if (depth > 32) return v
  const proto = Object.getPrototypeOf(v)
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const x = v[i]
      if (x !== null && typeof x === 'object') v[i] = detach(x, depth + 1)
    }
  } else if (proto === Object.prototype || proto === null) {
    for (const k of Object.keys(v)) {
      const x = (v as Record<string, unknown>)[k]
      if (x !== null && typeof x === 'object') (v as Record<string, unknown>)[k] = detach(x, depth + 1)
    }
  }
  return v
}

export type DraftMeta = { version: 1; operatorId: string; chainId: number }

/**
 * A draft State for one update over `parent`: writes land in the returned `changes`, never in `parent`'s objects.
 * `Object.values(draft.services)` and friends work (as views; no copies until written).
 */
export function createDraft(parent: View, meta: DraftMeta): { draft: State; changes: Changes } {
  const changes = emptyChanges()
  const records = new Map<string, ServiceRecord>()

  const getService = (id: string): ServiceRecord | undefined => {
    const c = changes.services.get(id)
    if (c !== undefined) return c ?? undefined
    const orig = parent.service(id)
    if (!orig) return undefined
    let v = records.get(id)
    if (!v) records.set(id, (v = nodeView({ id, orig, changes }, [], orig) as ServiceRecord))
    return v
  }
  const dataDescriptor = (value: unknown): PropertyDescriptor => ({ value, writable: true, enumerable: true, configurable: true })

  const services = new Proxy({} as Record<string, ServiceRecord>, {
    get: (_, p) => (typeof p === 'string' ? getService(p) : undefined),
    set: (_, p, v) => {
      if (typeof p !== 'string') return false
      changes.services.set(p, detach(v as ServiceRecord))
      return true
    },
    deleteProperty: (_, p) => {
      if (typeof p === 'string') changes.services.set(p, null)
      return true
    },
    has: (_, p) => typeof p === 'string' && getService(p) !== undefined,
    ownKeys: () => overlayView(parent, changes).serviceIds(),
    getOwnPropertyDescriptor: (_, p) => {
      const v = typeof p === 'string' ? getService(p) : undefined
      return v === undefined ? undefined : dataDescriptor(v)
    },
    defineProperty: () => false,
  })

  const getProcessed = (id: string): string | undefined => {
    const c = changes.processed.get(id)
    return c === undefined ? parent.processed(id) : (c ?? undefined)
  }
  const below = (floor: bigint): string[] => overlayView(parent, changes).processedBelow(floor)
  const processed = new Proxy({} as ProcessedWithIndex, {
    get: (_, p) => (p === idsBelow ? below : typeof p === 'string' ? getProcessed(p) : undefined),
    set: (_, p, v) => {
      if (typeof p !== 'string' || typeof v !== 'string') throw new TypeError('state.processed maps event ids to block numbers (strings)')
      changes.processed.set(p, v)
      return true
    },
    deleteProperty: (_, p) => {
      if (typeof p === 'string') changes.processed.set(p, null)
      return true
    },
    has: (_, p) => p === idsBelow || (typeof p === 'string' && getProcessed(p) !== undefined),
    ownKeys: () => overlayView(parent, changes).processedIds(),
    getOwnPropertyDescriptor: (_, p) => {
      const v = typeof p === 'string' ? getProcessed(p) : undefined
      return v === undefined ? undefined : dataDescriptor(v)
    },
    defineProperty: () => false,
  })

  const cursor = () => (changes.cursor ? changes.cursor.value : parent.cursor())
  const top = (p: PropertyKey): unknown => {
    switch (p) {
      case 'version':
        return meta.version
      case 'operatorId':
        return meta.operatorId
      case 'chainId':
        return meta.chainId
      case 'cursor':
        return cursor()
      case 'processed':
        return processed
      case 'services':
        return services
      default:
        return undefined
    }
  }
  const draft = new Proxy({} as State, {
    get: (_, p) => top(p),
    set: (_, p, v) => {
      if (p === 'services' || p === 'processed') {
        // a whole new map: everything it lacks is deleted (O(all); updates normally change entries)
        const target = p === 'services' ? services : processed
        const next = detach(v as Record<string, unknown>) ?? {}
        for (const id of Reflect.ownKeys(target)) if (!Object.hasOwn(next, id)) Reflect.deleteProperty(target, id)
        for (const [id, x] of Object.entries(next)) Reflect.set(target, id, x)
        return true
      }
      if (p !== 'cursor') throw new TypeError(`state.${String(p)} cannot be replaced inside an update`)
      changes.cursor = { value: v === undefined ? undefined : Object.freeze({ ...(detach(v) as Cursor) }) }
      return true
    },
    deleteProperty: (_, p) => {
      if (p !== 'cursor') throw new TypeError(`state.${String(p)} cannot be deleted`)
      changes.cursor = { value: undefined }
      return true
    },
    has: (_, p) => top(p) !== undefined,
    ownKeys: () => ['version', 'operatorId', 'chainId', ...(cursor() ? ['cursor'] : []), 'processed', 'services'],
    getOwnPropertyDescriptor: (_, p) => {
      const v = top(p)
      return v === undefined ? undefined : dataDescriptor(v)
    },
    defineProperty: () => false,
  })
  return { draft, changes }
}
