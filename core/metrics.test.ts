import { describe, expect, test } from 'vitest'
import { createMetrics } from './metrics.js'

describe('createMetrics', () => {
  test('default: counters, gauges and histograms in Prometheus text, with the process defaults', async () => {
    const m = createMetrics()
    m.counter('t_total', 'a counter', { labels: ['x'] }).inc({ x: 'y' })
    m.counter('t_total', 'a counter').inc({ x: 'y' }, 2)
    m.gauge('t_gauge', 'a gauge').set(5)
    m.histogram('t_seconds', 'a histogram', [0.1, 1]).observe(0.5, { op: 'a' })
    const text = await m.render()
    expect(text).toContain('# TYPE t_total counter')
    expect(text).toContain('t_total{x="y"} 3')
    expect(text).toContain('t_gauge 5')
    expect(text).toContain('t_seconds_bucket{le="1",op="a"} 1')
    expect(text).toContain('t_seconds_count{op="a"} 1')
    for (const n of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_seconds', 'nodejs_gc_duration_seconds', 'nodejs_heap_size_used_bytes'])
      expect(m.names()).toContain(n)
    expect(m.counter('t_total', '').get({ x: 'y' })).toBe(3)
  })

  test('behavior: label names are inferred at first use; a new label later is a programming error', async () => {
    const m = createMetrics({ defaultMetrics: false })
    const c = m.counter('u_total', 'inferred')
    expect(await m.render()).toContain('u_total 0')
    c.inc({ b: 1, a: 'z' })
    expect(await m.render()).toContain('u_total{a="z",b="1"} 1')
    expect(() => c.inc({ c: 'new' })).toThrow(/label c is not one of a, b/)
  })

  test('behavior: a gauge with collect is read at scrape time; registries are separate', async () => {
    let v = 1
    const a = createMetrics({ defaultMetrics: false })
    const g = a.gauge('v_gauge', 'collected', { collect: () => g.set(v) })
    v = 7
    expect(await a.render()).toContain('v_gauge 7')
    expect(await createMetrics({ defaultMetrics: false }).render()).not.toContain('v_gauge')
    expect(() => a.gauge('v_gauge', 'x') && a.counter('v_gauge', 'x')).toThrow(/already registered as gauge/)
  })
})
