import { describe, expect, test } from 'vitest'
import { chooseHosts, fits, regionMatches } from './placement.js'
import type { SshHost } from './types.js'

const host = (name: string, hourlyUsd: string, vcpu: number, o: Partial<SshHost> = {}): SshHost => ({
  name,
  address: '127.0.0.1',
  port: 22,
  user: 'root',
  privateKey: '',
  hostKey: '',
  capacity: { vcpu, memoryGiB: vcpu * 2, storageGiB: 100 },
  hourlyUsd,
  ...o,
})
const need = (vcpu: number) => ({ vcpu, memoryGiB: vcpu, storageGiB: 1 })

describe('chooseHosts', () => {
  test('default: the cheapest host that fits comes first', () => {
    const r = chooseHosts({ hosts: [host('big', '0.50', 16), host('small', '0.05', 1), host('mid', '0.10', 4)], used: new Map(), need: need(2), regions: [] })
    expect(r.ok && r.hosts.map((h) => h.name)).toEqual(['mid', 'big'])
  })

  test('behavior: ties are broken by name; prices compare as decimals, not strings', () => {
    const r = chooseHosts({ hosts: [host('b', '0.1', 4), host('a', '0.10', 4), host('c', '0.09', 4), host('d', '1e-2', 4)], used: new Map(), need: need(1), regions: [] })
    expect(r.ok && r.hosts.map((h) => h.name)).toEqual(['d', 'c', 'a', 'b'])
  })

  test('behavior: used capacity counts', () => {
    const used = new Map([['cheap', { vcpu: 3.5, memoryGiB: 0, storageGiB: 0 }]])
    const r = chooseHosts({ hosts: [host('cheap', '0.01', 4), host('dear', '0.99', 4)], used, need: need(1), regions: [] })
    expect(r.ok && r.hosts.map((h) => h.name)).toEqual(['dear'])
  })

  test('behavior: fractional sums that fit exactly are accepted', () => {
    expect(fits(host('h', '1', 0.3), { vcpu: 0.1, memoryGiB: 0, storageGiB: 0 }, { vcpu: 0.2, memoryGiB: 0, storageGiB: 0 })).toBe(true)
    expect(fits(host('h', '1', 0.3), { vcpu: 0.1, memoryGiB: 0, storageGiB: 0 }, { vcpu: 0.21, memoryGiB: 0, storageGiB: 0 })).toBe(false)
  })

  test('args: pinned placement', () => {
    const hosts = [host('a', '0.01', 4), host('b', '0.02', 4)]
    const r = chooseHosts({ hosts, used: new Map(), need: need(1), regions: [], pinned: 'b' })
    expect(r.ok && r.hosts.map((h) => h.name)).toEqual(['b'])
    const otherRegion = chooseHosts({ hosts: [host('a', '0.01', 4, { region: 'own' })], used: new Map(), need: need(1), regions: ['eu'], pinned: 'a' })
    expect(otherRegion.ok && otherRegion.hosts.map((h) => h.name)).toEqual(['a'])
    const none = chooseHosts({ hosts, used: new Map(), need: need(1), regions: [], pinned: 'zz' })
    expect(none).toEqual({ ok: false, problems: ['placement: no host named "zz"'] })
  })

  test('args: regions', () => {
    expect(regionMatches(host('a', '1', 1, { region: 'eu-west-1' }), ['eu'])).toBe(true)
    expect(regionMatches(host('a', '1', 1, { region: 'eu-west-1' }), ['eu-west-1'])).toBe(true)
    expect(regionMatches(host('a', '1', 1, { region: 'europe' }), ['eu'])).toBe(false)
    expect(regionMatches(host('a', '1', 1), ['eu'])).toBe(false)
    expect(regionMatches(host('a', '1', 1), [])).toBe(true)
  })

  test('error: nothing fits lists why per host', () => {
    const r = chooseHosts({ hosts: [host('a', '0.01', 1), host('b', '0.02', 2, { region: 'us-east' })], used: new Map(), need: need(4), regions: ['us'] })
    expect(r.ok).toBe(false)
    if (!r.ok) {
      expect(r.problems[0]).toMatch(/^a: region/)
      expect(r.problems[1]).toMatch(/^b: free 2 vCPU/)
    }
  })
})
