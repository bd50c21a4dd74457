import { describe, expect, test } from 'vitest'
import { fixture } from '../../test/fakes/price-sources.js'
import { PriceSourceParseError } from '../errors.js'
import { gcpAttachedGpu, parseGpuInfo, parseSkypilotAccelerators, parseSkypilotCsv } from './skypilot.js'

const at = 1_700_000_000_000

describe('parseSkypilotCsv', () => {
  test('default: AWS part 0, every row an offer with zone, prices and arch rows', () => {
    const r = parseSkypilotCsv(fixture('aws-vms-v8.part0.csv'), { cloud: 'aws', fetchedAt: at })
    expect(r.offers).toHaveLength(243)
    expect(r.rejected).toEqual([])
    const first = r.offers[0]!
    expect(first).toMatchObject({ provider: 'aws', region: 'ap-northeast-1', zone: 'apne1-az2', instanceType: 'a1.2xlarge', vcpu: 8, memoryGiB: 16, source: 'skypilot-aws', fetchedAt: at })
    expect(first.hourlyUsd.toString()).toBe('0.2568')
    expect(first.spotHourlyUsd!.toString()).toBe('0.2568')
    const c3 = r.offers.find((o) => o.instanceType === 'c3.xlarge' && o.zone === 'euc1-az3')!
    expect(c3.hourlyUsd.toString()).toBe('0.258')
    expect(c3.spotHourlyUsd!.toString()).toBe('0.1263')
  })

  test('behavior: AWS part 2, spot differs per zone of one region', () => {
    const r = parseSkypilotCsv(fixture('aws-vms-v8.part2.csv'), { cloud: 'aws', fetchedAt: at })
    expect(r.offers).toHaveLength(228)
    const apse2 = r.offers.filter((o) => o.instanceType === 'r6a.24xlarge' && o.region === 'ap-southeast-2')
    expect(apse2.map((o) => [o.zone, o.hourlyUsd.toString(), o.spotHourlyUsd!.toString()])).toEqual([
      ['apse2-az1', '6.5232', '2.3554'],
      ['apse2-az2', '6.5232', '5.7621'],
      ['apse2-az3', '6.5232', '2.3143'],
    ])
    expect(r.offers.at(-1)).toMatchObject({ instanceType: 'r6a.metal', vcpu: 192, memoryGiB: 1536 })
  })

  test('behavior: GCP GPU hosts without their accelerator row are rejected as host-only prices', () => {
    const r = parseSkypilotCsv(fixture('gcp-vms-v8.part0.csv'), { cloud: 'gcp', fetchedAt: at })
    expect(r.offers).toHaveLength(0)
    expect(r.rejected).toHaveLength(220)
    expect(r.rejected[0]).toEqual({ line: 2, why: 'host-only price: no A100 accelerator price for asia-northeast1-a in the catalog' })
  })

  test('behavior: GCP accelerator row (empty InstanceType) is added to the host price', () => {
    // europe-west4 a2-highgpu-1g: host 0.81406 (this file) + A100 2.933912 = 3.747972, Google's all-in list price
    // for that machine (cyclenerd-gcp-pricing.sample.yml); spot 0.31824 + 1.12763 = 1.44587
    const text = fixture('gcp-vms-v8.part0.csv') + ',,,A100,1.0,,europe-west4,europe-west4-a,2.933912,1.12763\n'
    const r = parseSkypilotCsv(text, { cloud: 'gcp', fetchedAt: at })
    const o = r.offers.find((x) => x.instanceType === 'a2-highgpu-1g' && x.zone === 'europe-west4-a')! as (typeof r.offers)[0] & { gpuHourlyUsd: { toString(): string } }
    expect(o.hourlyUsd.toString()).toBe('3.747972')
    expect(o.spotHourlyUsd!.toString()).toBe('1.44587')
    expect(o.gpuHourlyUsd.toString()).toBe('2.933912')
    expect(o.gpu).toMatchObject({ count: 1, model: 'A100' })
    // a2-highgpu-2g in the same zone falls back to 2 × the 1-GPU accelerator price
    const two = r.offers.find((x) => x.instanceType === 'a2-highgpu-2g' && x.zone === 'europe-west4-a')!
    expect(two.gpu.count).toBe(2)
    expect(two.hourlyUsd.toString()).toBe('7.495954') // 1.62813 + 2 × 2.933912
    expect(fixture('gcp-vms-v8.part0.csv')).toContain('a2-highgpu-2g,24.0,170.0,,,,europe-west4,europe-west4-a,1.62813,')
  })

  test('behavior: GCP T4/V100 accelerator rows pair with every N1 host of the zone that fits', () => {
    const head = 'InstanceType,vCPUs,MemoryGiB,AcceleratorName,AcceleratorCount,GpuInfo,Region,AvailabilityZone,Price,SpotPrice\n'
    // the last recorded row (n1-highmem-8 in us-central2-b) plus a large N1 host and two accelerator rows
    const last = fixture('gcp-vms-v8.part2.csv').trim().split('\n').at(-1)!
    const text = `${head}${last}\nn1-highmem-64,64.0,416.0,,,,us-central2,us-central2-b,3.78568,0.79696\n,,,T4,1.0,,us-central2,us-central2-b,0.35,0.14\n,,,V100,1.0,,us-central2,us-central2-b,2.48,0.992\n`
    const r = parseSkypilotCsv(text, { cloud: 'gcp', fetchedAt: at })
    const gpu = r.offers.filter((o) => o.gpu.count > 0).map((o) => `${o.instanceType}+${o.gpu.model}x${o.gpu.count}=${o.hourlyUsd.toString()}/${o.spotHourlyUsd?.toString()}`)
    // 1 T4 allows up to 48 vCPUs and 1 V100 up to 12: n1-highmem-64 gets neither
    expect(gpu).toEqual(['n1-highmem-8+T4x1=0.82321/0.23962', 'n1-highmem-8+V100x1=2.95321/1.09162'])
    expect(r.offers.filter((o) => o.gpu.count === 0)).toHaveLength(2)
  })

  test('behavior: GCP last page — TPU rows, 700.0 placeholders, absurd prices and duplicates are rejected', () => {
    const text = fixture('gcp-vms-v8.part2.csv')
    const r = parseSkypilotCsv(text, { cloud: 'gcp', fetchedAt: at })
    expect(r.offers).toHaveLength(1)
    expect(r.offers[0]).toMatchObject({ instanceType: 'n1-highmem-8', region: 'us-central2', zone: 'us-central2-b', vcpu: 8, memoryGiB: 52 })
    expect(r.offers[0]!.hourlyUsd.toString()).toBe('0.47321')
    const why = (line: number) => r.rejected.find((x) => x.line === line)?.why
    // line 67: ,,,tpu-v6e-1,1,tpu-v6e-1,asia-east1,asia-east1-c,700.0,700.0
    expect(why(67)).toContain('hourly price 700 is a placeholder')
    // line 2: 24460.8 USD/h for a v5p pod slice
    expect(why(2)).toContain('hourly price 24460.8 is above the sanity cap')
    // line 79 repeats line 78 exactly
    expect(why(79)).toBe('duplicate of line 78')
    expect(r.rejected.filter((x) => x.why.startsWith('duplicate')).length).toBeGreaterThanOrEqual(10)
    expect(r.rejected).toHaveLength(233)
  })

  test('behavior: Azure quoted "V1,V2" cells and empty spot prices', () => {
    const r = parseSkypilotCsv(fixture('azure-vms-v6.part0.csv'), { cloud: 'azure', fetchedAt: at })
    expect(r.offers).toHaveLength(303)
    const b1s = r.offers.find((o) => o.instanceType === 'Standard_B1s' && o.region === 'eastus')!
    expect(b1s.hourlyUsd.toString()).toBe('0.0104')
    expect(b1s.spotHourlyUsd).toBeUndefined()
    const b2ats = r.offers.find((o) => o.instanceType === 'Standard_B2ats_v2' && o.region === 'westus')!
    expect(b2ats).toMatchObject({ vcpu: 2, memoryGiB: 1 })
    expect(b2ats.spotHourlyUsd!.toString()).toBe('0.00308')
    expect(r.offers[0]).toMatchObject({ instanceType: 'Basic_A0', memoryGiB: 0.75, zone: undefined })
  })

  test('behavior: RunPod column order, Python-dict GpuInfo and its GiB-as-MiB memory', () => {
    const r = parseSkypilotCsv(fixture('runpod-vms-v8.part0.csv'), { cloud: 'runpod', fetchedAt: at })
    expect(r.offers).toHaveLength(79)
    const o = r.offers[0]!
    expect(o).toMatchObject({ provider: 'runpod', region: 'CA', zone: 'CA-MTL-1', instanceType: '1x_A100-80GB_SECURE', vcpu: 8, memoryGiB: 117 })
    expect(o.gpu).toEqual({ count: 1, model: 'A100-80GB', memoryGiB: 80 })
    expect(o.hourlyUsd.toString()).toBe('1.64')
    expect(o.spotHourlyUsd!.toString()).toBe('0.82')
    const four = r.offers.find((x) => x.instanceType === '4x_A100-80GB_SECURE')!
    expect(four.gpu.count).toBe(4)
    expect(four.hourlyUsd.toString()).toBe('6.56')
  })

  test('behavior: Lambda CRLF file, float GPU counts, no spot', () => {
    const text = fixture('lambda-vms-v8.part0.csv')
    expect(text).toContain('\r\n')
    const r = parseSkypilotCsv(text, { cloud: 'lambda', fetchedAt: at })
    expect(r.offers).toHaveLength(96)
    expect(r.offers.every((o) => !o.region.endsWith('\r') && o.spotHourlyUsd === undefined)).toBe(true)
    const a100 = r.offers.find((o) => o.instanceType === 'gpu_8x_a100' && o.region === 'us-west-2')!
    expect(a100).toMatchObject({ vcpu: 124, memoryGiB: 1800, gpu: { count: 8, model: 'A100', memoryGiB: 40 } })
    expect(a100.hourlyUsd.toString()).toBe('10.32')
    expect(r.offers[0]).toMatchObject({ instanceType: 'cpu_4x_general', region: 'europe-central-1', vcpu: 4, memoryGiB: 16 })
    expect(r.offers[0]!.hourlyUsd.toString()).toBe('0.2')
  })

  test('behavior: DigitalOcean integer vCPUs, "47.60" prices, H100 GpuInfo', () => {
    const r = parseSkypilotCsv(fixture('do-vms-v6.csv'), { cloud: 'do', fetchedAt: at })
    expect(r.offers).toHaveLength(44)
    const h8 = r.offers.find((o) => o.instanceType === 'gpu-h100x8-640gb')!
    expect(h8).toMatchObject({ provider: 'digitalocean', region: 'tor1', vcpu: 160, memoryGiB: 1920, gpu: { count: 8, model: 'H100', memoryGiB: 79.65 } })
    expect(h8.hourlyUsd.toString()).toBe('47.6')
    expect(r.offers.find((o) => o.instanceType === 's-4vcpu-8gb' && o.region === 'sfo3')!.hourlyUsd.toString()).toBe('0.07143')
  })

  test('error: an HTML error page is not a catalog', () => {
    expect(() => parseSkypilotCsv('<html><body>rate limited</body></html>', { cloud: 'aws', fetchedAt: at })).toThrow(PriceSourceParseError)
  })

  test('behavior: short rows, empty and non-numeric prices are rejected with the line number', () => {
    const head = 'InstanceType,AcceleratorName,AcceleratorCount,vCPUs,MemoryGiB,GpuInfo,Price,SpotPrice,Region,AvailabilityZone,Arch\n'
    const r = parseSkypilotCsv(`${head}m5.large,,,2.0,8.0,,,0.03,us-east-1,use1-az1,x86_64\nm5.large,,,2.0,8.0,,abc,,us-east-1,use1-az2,x86_64\nm5.large,,,2.0\nm5.large,,,2.0,8.0,,-0.1,,us-east-1,use1-az3,x86_64\n`, {
      cloud: 'aws',
      fetchedAt: at,
    })
    expect(r.offers).toEqual([])
    expect(r.rejected).toEqual([
      { line: 2, why: 'no on-demand price' },
      { line: 3, why: 'on-demand price "abc" is not a number' },
      { line: 4, why: '4 cells, the header has 11' },
      { line: 5, why: 'hourly price -0.1 is negative' },
    ])
  })
})

describe('helpers', () => {
  test('parseGpuInfo: Python dict repr', () => {
    expect(parseGpuInfo("{'Gpus': [{'Name': 'H100', 'Manufacturer': 'NVIDIA', 'Count': 1.0, 'MemoryInfo': {'SizeInMiB': 81559}}], 'TotalGpuMemoryInMiB': 81559}")).toEqual({
      name: 'H100',
      count: 1,
      memoryGiB: 79.65,
    })
    expect(() => parseGpuInfo("{'Gpus': [")).toThrow(SyntaxError)
  })

  test('gcpAttachedGpu: machine families with separately priced GPUs', () => {
    expect(gcpAttachedGpu('a2-ultragpu-8g')).toEqual({ model: 'A100-80GB', count: 8 })
    expect(gcpAttachedGpu('a3-edgegpu-8g-nolssd')).toEqual({ model: 'H100', count: 8 })
    expect(gcpAttachedGpu('g2-standard-48')).toEqual({ model: 'L4', count: 4 })
    expect(gcpAttachedGpu('n1-highmem-8')).toBeUndefined()
  })

  test('parseSkypilotAccelerators: quoted Python lists', () => {
    const acc = parseSkypilotAccelerators(fixture('common-accelerators-v8.csv'))
    expect(acc).toHaveLength(66)
    expect(acc.find((a) => a.name === 'H100')!.clouds).toHaveLength(14)
    expect(acc.find((a) => a.name === 'H100')!.clouds).toContain('DO')
    expect(acc.find((a) => a.name === 'A10G')!.clouds).toEqual(['AWS'])
    expect(acc.find((a) => a.name === 'Gaudi HL-205')).toBeDefined()
  })
})
