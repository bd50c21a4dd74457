/**
 * Node choice and the TFT runway on the grid proxy's recorded node record (../shared/fixtures/threefold/node-get.json,
 * mainnet node 1, whose used cru 52 exceeds its total 24: overcommitted CPU reads as none free).
 */
import { readFileSync } from 'node:fs'
import { describe, expect, test } from 'vitest'
import { usd } from '../../core/money.js'
import type { Offer } from '../../core/offer.js'
import { checkRunway, hourlyTft } from './checkRunway.js'
import { chooseNode, freeResources, nodeIdOfOffer, type ChooseNodeParameters, type GridProxyNode } from './chooseNode.js'

const recorded: GridProxyNode = JSON.parse(readFileSync(new URL('../../../shared/fixtures/threefold/node-get.json', import.meta.url), 'utf8'))
const GiB = 1024 ** 3
const node = (nodeId: number, o: Partial<GridProxyNode> = {}): GridProxyNode => ({
  ...recorded,
  nodeId,
  used_resources: { cru: 4, sru: 100 * GiB, hru: 0, mru: 16 * GiB },
  ...o,
})
const offer = (nodeId: number, hourly: string, o: Partial<Offer> = {}): Offer => ({
  provider: 'threefold',
  source: 'threefold-gridproxy',
  fetchedAt: 0,
  region: 'BE',
  instanceType: `node-${nodeId}/2c-4g`,
  vcpu: 2,
  memoryGiB: 4,
  gpu: { count: 0 },
  includedStorageGiB: 0,
  hourlyUsd: usd(hourly),
  ...o,
})
const params = (o: Partial<ChooseNodeParameters>): ChooseNodeParameters => ({
  offers: [],
  nodes: new Map(),
  spec: { vcpu: 2, memoryGiB: 4, storageGiB: 10, gpu: { count: 0 }, ports: [] },
  farms: [],
  failedAt: new Map(),
  cooldownMs: 60_000,
  now: 1_000_000,
  ...o,
})

describe('chooseNode', () => {
  test('default: cheapest first, then longer uptime, then more free capacity', () => {
    const nodes = new Map([
      [1, node(1, { uptime: 100 })],
      [2, node(2, { uptime: 900 })],
      [3, node(3, { uptime: 900, used_resources: { cru: 0, sru: 0, hru: 0, mru: 0 } })],
      [4, node(4, { uptime: 5 })],
    ])
    const r = chooseNode(params({ nodes, offers: [offer(1, '0.02'), offer(2, '0.02'), offer(3, '0.02'), offer(4, '0.01')] }))
    expect(r.ranked.map((c) => c.nodeId)).toEqual([4, 3, 2, 1])
  })

  test('behavior: down, overcommitted, disallowed-farm, recently failed and IPv4-less nodes are left out, with reasons', () => {
    const nodes = new Map([
      [1, recorded],
      [2, node(2, { status: 'down' })],
      [3, node(3, { farmId: 9 })],
      [4, node(4)],
      [5, node(5, { farmId: 1 })],
    ])
    const r = chooseNode(
      params({
        nodes,
        offers: [offer(1, '0.01'), offer(2, '0.01'), offer(3, '0.01'), offer(4, '0.01'), offer(5, '0.01'), offer(6, '0.01')],
        farms: [1],
        failedAt: new Map([[4, 990_000]]),
        spec: { vcpu: 2, memoryGiB: 4, storageGiB: 10, gpu: { count: 0 }, ports: [8080] },
        farmFreeIpv4: new Map([[1, 2]]),
      }),
    )
    expect(r.ranked.map((c) => c.nodeId)).toEqual([5])
    expect(r.rejected.map((x) => x.why)).toEqual([
      expect.stringMatching(/^node 1 lacks free capacity \(0 cores/),
      'node 2 is down',
      'farm 9 is not allowed',
      'node 4 failed 10 s ago',
      'node 6 unknown to the grid proxy',
    ])
    // after the cooldown node 4 is back; without a free IPv4 in its farm a spec with ports cannot use it
    const later = chooseNode(params({ nodes, offers: [offer(4, '0.01')], failedAt: new Map([[4, 0]]), spec: { vcpu: 2, memoryGiB: 4, storageGiB: 10, gpu: { count: 0 }, ports: [80] }, farmFreeIpv4: new Map() }))
    expect(later.rejected).toEqual([{ instanceType: 'node-4/2c-4g', why: 'farm 1 has no free public IPv4' }])
  })

  test('args: the recorded node\'s free resources; offer names carry the node id', () => {
    expect(freeResources(recorded)).toMatchObject({ cru: 0 })
    expect(freeResources(recorded).mruGiB).toBeCloseTo((202802933760 - 119957094400) / GiB, 6)
    expect(nodeIdOfOffer({ instanceType: 'node-42/dedicated' })).toBe(42)
    expect(nodeIdOfOffer({ instanceType: 'g4dn.xlarge' })).toBeUndefined()
  })
})

describe('checkRunway', () => {
  test('default: hours the free TFT pays for every contract plus the new one, buffer included', () => {
    // 0.05 USD/h at 0.02 USD/TFT = 2.5 TFT/h, +2 % = 2.55 TFT/h; twice that = 5.1 TFT/h; 510 TFT = 100 h
    expect(hourlyTft('0.05', '0.02', '0.02').toString()).toBe('2.55')
    const r = checkRunway({ freeTft: '510', runningHourlyUsd: ['0.05'], newHourlyUsd: '0.05', usdPerTft: '0.02', buffer: '0.02', minRunwayHours: 72 })
    expect(r.hours.toString()).toBe('100')
  })

  test('error: a balance below the runway is TFT_RUNWAY_TOO_SHORT with a provider-wide quota failover', () => {
    const run = () => checkRunway({ freeTft: '100', runningHourlyUsd: ['0.05'], newHourlyUsd: '0.05', usdPerTft: '0.02', buffer: '0.02', minRunwayHours: 72 })
    expect(run).toThrow(expect.objectContaining({ code: 'TFT_RUNWAY_TOO_SHORT', meta: { failover: { kind: 'quota', scope: 'provider' } } }))
    expect(() => checkRunway({ freeTft: '1', runningHourlyUsd: [], newHourlyUsd: '1', usdPerTft: '0', buffer: '0', minRunwayHours: 1 })).toThrow(expect.objectContaining({ code: 'TFT_RATE_UNKNOWN' }))
  })
})
