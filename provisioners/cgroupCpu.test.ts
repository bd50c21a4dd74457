import { spawn } from 'node:child_process'
import { describe, expect, test } from 'vitest'
import { parseCpuStat, parseCpuacctUsage, parseProcCgroup, readCgroupCpu } from './cgroupCpu.js'

describe('cgroup CPU counters', () => {
  test('default: parsers', () => {
    const t = parseProcCgroup('4:memory:/a/b\n2:cpuacct:/c\n1:cpu,cpuacct:/d\n0::/e\n')
    expect(t.v2).toBe('/e')
    expect(t.v1.get('memory')).toBe('/a/b')
    expect(t.v1.get('cpuacct')).toBe('/d')
    expect(parseCpuStat('usage_usec 2500000\nuser_usec 1\n')).toBe(2.5)
    expect(parseCpuacctUsage('1500000000\n')).toBe(1.5)
    expect(parseCpuacctUsage('x')).toBeUndefined()
  })

  test('behavior: a process without a cgroup of its own has no reading; a gone process neither', async () => {
    // the test runner sits in the root cpuacct group here (or in a group of its own elsewhere): either a number or none
    const mine = await readCgroupCpu(process.pid)
    expect(mine === undefined || mine > 0).toBe(true)
    const child = spawn('true')
    await new Promise((r) => child.on('exit', r))
    expect(await readCgroupCpu(child.pid!)).toBeUndefined()
  })
})
