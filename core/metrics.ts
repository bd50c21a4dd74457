/**
 * A small metrics registry with Prometheus text exposition (counters, gauges, histograms with labels).
 */
type Labels = Record<string, string | number>

const key = (labels?: Labels) =>
  labels
    ? Object.keys(labels)
        .sort()
        .map((k) => `${k}="${String(labels[k]).replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`)
        .join(',')
    : ''

export type Counter = { inc(labels?: Labels, by?: number): void; get(labels?: Labels): number }
export type Gauge = { set(value: number, labels?: Labels): void; inc(labels?: Labels, by?: number): void; get(labels?: Labels): number }
export type Histogram = { observe(value: number, labels?: Labels): void }

export type Metrics = {
  counter(name: string, help: string): Counter
  gauge(name: string, help: string): Gauge
  histogram(name: string, help: string, buckets?: number[]): Histogram
  /** Prometheus text format 0.0.4. */
  render(): string
}

type Family = { name: string; help: string; type: 'counter' | 'gauge' | 'histogram'; render(): string[] }

export function createMetrics(): Metrics {
  const families = new Map<string, Family & { impl: unknown }>()
  const get = <T>(name: string, type: Family['type'], make: () => Family & { impl: T }): T => {
    const f = families.get(name)
    if (f) {
      if (f.type !== type) throw new TypeError(`metric ${name} already registered as ${f.type}`)
      return f.impl as T
    }
    const nf = make()
    families.set(name, nf)
    return nf.impl
  }
  const scalar = (name: string, help: string, type: 'counter' | 'gauge') => {
    const values = new Map<string, number>()
    const impl = {
      inc(labels?: Labels, by = 1) {
        const k = key(labels)
        values.set(k, (values.get(k) ?? 0) + by)
      },
      set(value: number, labels?: Labels) {
        values.set(key(labels), value)
      },
      get(labels?: Labels) {
        return values.get(key(labels)) ?? 0
      },
    }
    return {
      name,
      help,
      type,
      impl,
      render: () => [...values].map(([k, v]) => `${name}${k ? `{${k}}` : ''} ${v}`),
    }
  }
  return {
    counter: (name, help) => get<Counter>(name, 'counter', () => scalar(name, help, 'counter')),
    gauge: (name, help) => get<Gauge>(name, 'gauge', () => scalar(name, help, 'gauge')),
    histogram: (name, help, buckets = [0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 120]) =>
      get<Histogram>(name, 'histogram', () => {
        const series = new Map<string, { counts: number[]; sum: number; count: number }>()
        return {
          name,
          help,
          type: 'histogram',
          impl: {
            observe(value: number, labels?: Labels) {
              const k = key(labels)
              let s = series.get(k)
              if (!s) series.set(k, (s = { counts: buckets.map(() => 0), sum: 0, count: 0 }))
              buckets.forEach((b, i) => {
                if (value <= b) s!.counts[i]!++
              })
              s.sum += value
              s.count++
            },
          },
          render: () =>
            [...series].flatMap(([k, s]) => {
              const pre = k ? `${k},` : ''
              return [
                ...buckets.map((b, i) => `${name}_bucket{${pre}le="${b}"} ${s.counts[i]}`),
                `${name}_bucket{${pre}le="+Inf"} ${s.count}`,
                `${name}_sum${k ? `{${k}}` : ''} ${s.sum}`,
                `${name}_count${k ? `{${k}}` : ''} ${s.count}`,
              ]
            }),
        }
      }),
    render() {
      const out: string[] = []
      for (const f of families.values()) {
        out.push(`# HELP ${f.name} ${f.help}`, `# TYPE ${f.name} ${f.type}`, ...f.render())
      }
      return out.join('\n') + '\n'
    },
  }
}
