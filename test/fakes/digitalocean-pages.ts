/**
 * Fakes of DigitalOcean's pricing pages. No recording of https://www.digitalocean.com/pricing/droplets or
 * /pricing/gpu-droplets exists, so these pages are CONSTRUCTED: a Next.js page wrapper with a `__NEXT_DATA__` script,
 * holding page-shaped plan objects written for these tests (specs and prices as DigitalOcean publishes them, but typed
 * in by hand, not captured) and, on the droplets page, the one RECORDED API size object
 * (../shared/fixtures/pricing/digitalocean-size-object.sample.json).
 */
import { fixture } from './price-sources.js'

/** The recorded API v2 size object (s-1vcpu-512mb-10gb, six regions). */
export const recordedDoSize = (): Record<string, unknown> => JSON.parse(fixture('digitalocean-size-object.sample.json')).size

/** A /v2/sizes body around the given size objects. */
export const doSizesBody = (sizes: unknown[]) => JSON.stringify({ sizes, links: {}, meta: { total: sizes.length } })

/** An HTML page whose __NEXT_DATA__ script holds `data` (with `<` escaped as Next.js does), plus optional other scripts. */
export function nextDataPage(data: unknown, extraScripts: string[] = []): string {
  const json = JSON.stringify(data).replace(/</g, '\\u003c')
  return [
    '<!DOCTYPE html><html lang="en"><head><meta charSet="utf-8"/><title>Droplet Pricing | DigitalOcean</title>',
    '<script src="/_next/static/chunks/main.js" defer=""></script></head>',
    '<body><div id="__next"><h1>Droplet pricing</h1></div>',
    ...extraScripts,
    `<script id="__NEXT_DATA__" type="application/json">${json}</script>`,
    '</body></html>',
  ].join('')
}

/** Constructed page-shaped droplet plans (memory in GB, price {hourly, monthly}). */
export const constructedDropletPlans = () => [
  { slug: 's-1vcpu-1gb', description: 'Basic', cpus: 1, memory: 1, disk: 25, transfer: 1, price: { hourly: 0.00893, monthly: 6 } },
  { slug: 's-2vcpu-4gb', description: 'Basic', cpus: 2, memory: 4, disk: 80, transfer: 4, price: { hourly: '0.03571', monthly: '24.00' } },
  // only the monthly price: hourly = 42 / 672
  { slug: 'c-2', description: 'CPU-Optimized', vcpus: 2, memory: 4, disk: 25, price: { monthly: 42 } },
]

/** Constructed page-shaped GPU plans in the shapes the page may use (gpu.count or gpu.variant, disk {boot, scratch}). */
export const constructedGpuPlans = () => [
  { slug: 'gpu-h100x1-80gb', description: 'NVIDIA H100', vcpus: 20, memory: 240, disk: { boot: 720, scratch: 5120 }, gpu: { count: 1, memory: 80, model: 'NVIDIA H100' }, price: { hourly: 3.39, monthly: 2278.08 } },
  { slug: 'gpu-h100x8-640gb', description: 'NVIDIA H100', vcpus: 160, memory: 1920, disk: { boot: { amount: 2, unit: 'TiB' }, scratch: 40960 }, gpu: { variant: 'x8' }, price: { hourly: 23.92 } },
  { slug: 'gpu-mi300x1-192gb', description: 'AMD Instinct MI300X', vcpus: 20, memory: 240, disk: { boot: 720, scratch: 5120 }, gpu: { count: 1 }, price: { hourly: 1.99 } },
  { slug: 'gpu-l40sx1-48gb', description: 'NVIDIA L40S', vcpus: 8, memory: 64, disk: { boot: 500, scratch: 0 }, gpu: { count: 1 }, price: { hourly: 1.57 } },
  { slug: 'gpu-4000adax1-20gb', description: 'NVIDIA RTX 4000 Ada', vcpus: 8, memory: 32, disk: { boot: 500, scratch: 0 }, gpu: { count: 1 }, price: { hourly: 0.76 } },
  { slug: 'gpu-6000adax1-48gb', description: 'NVIDIA RTX 6000 Ada', vcpus: 8, memory: 64, disk: { boot: 500, scratch: 0 }, gpu: { count: 1 }, price: { hourly: 1.57 } },
]

/** The constructed droplets page: the recorded size object and the constructed droplet plans, at different depths. */
export const constructedDropletsPage = () =>
  nextDataPage({
    props: {
      pageProps: {
        hero: { title: 'Droplets', regions: [{ slug: 'nyc1', name: 'New York 1' }] },
        sections: [{ title: 'Basic', plans: constructedDropletPlans() }],
        apiSizes: [recordedDoSize()],
      },
    },
    page: '/pricing/droplets',
    buildId: 'constructed',
  })

/** The constructed GPU droplets page. */
export const constructedGpuPage = () =>
  nextDataPage({ props: { pageProps: { gpuDroplets: { tiers: [{ name: 'On-demand', plans: constructedGpuPlans() }] } } }, page: '/pricing/gpu-droplets', buildId: 'constructed' })
