import { describe, expect, test } from 'vitest'
import { fixture } from '../../test/fakes/price-sources.js'
import { resourceSpec } from '../../test/helpers/spec.js'
import { cheapest } from '../select.js'
import { parseVultrPlanList, parseVultrPlans, type VultrPlan } from './vultr.js'

const at = Date.UTC(2026, 0, 1)

// constructed in this test (the recording has no fractional plan): Vultr's vGPU plans share one 80 GB A100
const slice: VultrPlan = {
  id: 'vcg-a100-1c-6g-4vram', vcpu_count: 1, ram: 6144, disk: 70, disk_count: 1, hourly_cost: 0.123, locations: ['ewr'],
  deploy_ondemand: true, gpu_vram_gb: 4, gpu_type: 'NVIDIA_A100',
}
const whole: VultrPlan = {
  id: 'vcg-a100-12c-120g-80vram', vcpu_count: 12, ram: 122880, disk: 1400, disk_count: 1, hourly_cost: 2.397, locations: ['ewr'],
  deploy_ondemand: true, gpu_vram_gb: 80, gpu_type: 'NVIDIA_A100',
}
// older plans carry the VRAM only in the id
const idOnlySlice: VultrPlan = { id: 'vcg-a100-3c-30g-20vram', vcpu_count: 3, ram: 30720, disk: 350, hourly_cost: 0.6, locations: ['ewr'] }

describe('parseVultrPlans: fractional GPUs', () => {
  test('default: the recording keeps its whole A40 (48 GB of 48)', () => {
    const r = parseVultrPlans(fixture('vultr-plans-api.fixture.json'), { fetchedAt: at })
    expect(r.offers.find((o) => o.instanceType === 'vcg-a40-24c-120g-48vram')).toMatchObject({ gpu: { count: 1, model: 'A40', memoryGiB: 48 } })
    expect(r.rejected).toEqual([])
  })

  test('behavior: a plan with part of a GPU\'s VRAM (gpu_vram_gb or the id) is rejected with the reason', () => {
    const r = parseVultrPlanList([slice, whole, idOnlySlice], { fetchedAt: at })
    expect(r.offers.map((o) => o.instanceType)).toEqual(['vcg-a100-12c-120g-80vram'])
    expect(r.offers[0]).toMatchObject({ gpu: { count: 1, model: 'A100', memoryGiB: 80 } })
    expect(r.rejected).toEqual([
      { row: 'plans[0] vcg-a100-1c-6g-4vram', why: 'fractional GPU: 4 GB VRAM where a whole A100 has 80 GB (only whole GPUs are offered)' },
      { row: 'plans[2] vcg-a100-3c-30g-20vram', why: 'fractional GPU: 20 GB VRAM where a whole A100 has 80 GB (only whole GPUs are offered)' },
    ])
  })

  test('behavior: A100:1 is quoted on the whole GPU, not the cheaper slice', () => {
    const { offers } = parseVultrPlanList([slice, whole, idOnlySlice], { fetchedAt: at })
    const r = cheapest(resourceSpec({ ports: [], gpu: { count: 1, model: 'A100' } }), offers)
    expect(r.ok && r.quote.offer.instanceType).toBe('vcg-a100-12c-120g-80vram')
  })

  test('behavior: a model whose full VRAM is not known is kept as reported', () => {
    const r = parseVultrPlanList([{ ...slice, id: 'vcg-x9-1c-6g-4vram', gpu_type: 'NVIDIA_X9' }], { fetchedAt: at })
    expect(r.offers[0]).toMatchObject({ gpu: { count: 1, model: 'X9', memoryGiB: 4 } })
  })
})
