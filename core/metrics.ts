/**
 * The metrics registry: prom-client behind the small API the parts use (`counter`, `gauge`, `histogram` with
 * `inc/set/observe(labels)`), one Registry per Common (no global registry), with the default process, GC and
 * event-loop metrics. Label names are declared per metric, or inferred from the first labelled use.
 */
import { Counter as PCounter, Gauge as PGauge, Histogram as PHistogram, Registry, collectDefaultMetrics } from 'prom-client'

export type Labels = Record<string, string | number>

export type Counter = { inc(labels?: Labels, by?: number): void; get(labels?: Labels): number }
export type Gauge = { set(value: number, labels?: Labels): void; inc(labels?: Labels, by?: number): void; get(labels?: Labels): number }
export type Histogram = { observe(value: number, labels?: Labels): void }

export type MetricOptions = {
  /** Label names; without them they are taken from the first labelled use (later uses must not add new ones). */
  labels?: readonly string[]
  /** Histogram buckets (seconds unless the name says otherwise). */
  buckets?: number[]
  /** Called at every scrape before the value is read (a gauge that reads its value from elsewhere). */
  collect?: () => void
}

export type Metrics = {
  counter(name: string, help: string, o?: MetricOptions): Counter
  gauge(name: string, help: string, o?: MetricOptions): Gauge
  histogram(name: string, help: string, buckets?: number[] | MetricOptions): Histogram
  /** Prometheus text format 0.0.4. */
  render(): Promise<string>
  /** Content type of `render()`. */
  contentType: string
  /** Names of every registered metric family (the default ones included). */
  names(): string[]
  /** The prom-client registry (for exporters that want it). */
  registry: Registry
}

export type CreateMetricsParameters = {
  /** Process, GC and event-loop metrics (prom-client's defaults). Default true. */
  defaultMetrics?: boolean
}

const DEFAULT_BUCKETS = [0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 120]

const keyOf = (labels?: Labels) =>
  labels
    ? Object.keys(labels)
        .sort()
        .map((k) => `${k}=${String(labels[k])}`)
        .join('\u0000')
    : ''

const str = (labels?: Labels): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const k of Object.keys(labels ?? {}).sort()) out[k] = String(labels![k])
  return out
}

type Kind = 'counter' | 'gauge' | 'histogram'

export function createMetrics(p: CreateMetricsParameters = {}): Metrics {
  const registry = new Registry()
  if (p.defaultMetrics !== false) collectDefaultMetrics({ register: registry })
  const families = new Map<string, { kind: Kind; impl: unknown }>()

  /**
   * One family: the prom-client metric is (re)made when its label names become known; the value shadow lets
   * `get()` stay synchronous for the callers that read a counter back.
   */
  function family(name: string, help: string, kind: Kind, o: MetricOptions) {
    let labelNames: string[] | undefined = o.labels ? [...o.labels] : undefined
    let metric: PCounter | PGauge | PHistogram
    const make = () => {
      if (metric) registry.removeSingleMetric(name)
      const base = { name, help, registers: [registry], labelNames: labelNames ?? [] }
      if (kind === 'counter') metric = new PCounter(base)
      else if (kind === 'gauge') metric = new PGauge({ ...base, ...(o.collect && { collect: o.collect }) })
      else metric = new PHistogram({ ...base, buckets: o.buckets ?? DEFAULT_BUCKETS })
    }
    make()
    const bind = (labels?: Labels): Record<string, string> => {
      const l = str(labels)
      const keys = Object.keys(l)
      if (!labelNames) {
        if (!keys.length) return l
        labelNames = keys.sort()
        make()
        return l
      }
      for (const k of keys) if (!labelNames.includes(k)) throw new TypeError(`metric ${name}: label ${k} is not one of ${labelNames.join(', ') || '(none)'}`)
      return l
    }
    return { get metric() { return metric }, bind }
  }

  function get<T>(name: string, kind: Kind, make: () => T): T {
    const f = families.get(name)
    if (f) {
      if (f.kind !== kind) throw new TypeError(`metric ${name} already registered as ${f.kind}`)
      return f.impl as T
    }
    const impl = make()
    families.set(name, { kind, impl })
    return impl
  }

  const scalar = (name: string, help: string, kind: 'counter' | 'gauge', o: MetricOptions) => {
    const f = family(name, help, kind, o)
    const values = new Map<string, number>()
    return {
      inc(labels?: Labels, by = 1) {
        const l = f.bind(labels)
        ;(f.metric as PCounter).inc(l, by)
        values.set(keyOf(labels), (values.get(keyOf(labels)) ?? 0) + by)
      },
      set(value: number, labels?: Labels) {
        const l = f.bind(labels)
        ;(f.metric as PGauge).set(l, value)
        values.set(keyOf(labels), value)
      },
      get: (labels?: Labels) => values.get(keyOf(labels)) ?? 0,
    }
  }

  return {
    counter: (name, help, o = {}) => get<Counter>(name, 'counter', () => scalar(name, help, 'counter', o)),
    gauge: (name, help, o = {}) => get<Gauge>(name, 'gauge', () => scalar(name, help, 'gauge', o)),
    histogram: (name, help, b) =>
      get<Histogram>(name, 'histogram', () => {
        const f = family(name, help, 'histogram', Array.isArray(b) ? { buckets: b } : (b ?? {}))
        return {
          observe(value, labels) {
            const l = f.bind(labels)
            ;(f.metric as PHistogram).observe(l, value)
          },
        }
      }),
    render: () => registry.metrics(),
    contentType: registry.contentType,
    names: () => registry.getMetricsAsArray().map((m) => (m as unknown as { name: string }).name),
    registry,
  }
}
