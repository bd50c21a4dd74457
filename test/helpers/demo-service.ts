/**
 * The demo service (daemon/dev/demo-service.mjs) as an artifact for tests, plus artifacts that misbehave on purpose.
 */
import { chmodSync, copyFileSync, mkdtempSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** Absolute path of the shipped demo service. */
export const demoServicePath = fileURLToPath(new URL('../../daemon/dev/demo-service.mjs', import.meta.url))

let runnable: string | undefined
/**
 * A copy of the demo service any user can read (0644 in a 0755 directory under /tmp), for scripts that run it as
 * another user (workload_user tests): the checkout itself may lie under a folder that user cannot traverse.
 */
export function runnableDemoServicePath(): string {
  if (!runnable) {
    const dir = mkdtempSync(join('/tmp', 'bpo-demo-service-'))
    chmodSync(dir, 0o755)
    runnable = join(dir, 'demo-service.mjs')
    copyFileSync(demoServicePath, runnable)
    chmodSync(runnable, 0o644)
  }
  return runnable
}

/** The demo service's bytes (an executable Node script with a shebang). */
export function demoServiceArtifact(): Buffer {
  return readFileSync(demoServicePath)
}

/** What the demo service answers on `GET /`. */
export type DemoServiceInfo = {
  service: string | null
  blueprint: string | null
  deployment: string | null
  replica: number | null
  uptime: number
  /** How many times a replica started with this DATA_DIR (survives scale to zero). */
  starts: number
  /** GET / requests served with this DATA_DIR. */
  requests: number
  pid: number
}

/** GET `${endpoint}/` of a demo service. */
export async function readDemoInfo(endpoint: string, timeoutMs = 5_000): Promise<DemoServiceInfo> {
  const res = await fetch(`${endpoint}/`, { signal: AbortSignal.timeout(timeoutMs) })
  if (!res.ok) throw new Error(`GET ${endpoint}/ answered ${res.status}`)
  return (await res.json()) as DemoServiceInfo
}

/** True when `${endpoint}/healthz` answers 200. */
export async function probeDemo(endpoint: string, timeoutMs = 5_000): Promise<boolean> {
  try {
    const res = await fetch(`${endpoint}/healthz`, { signal: AbortSignal.timeout(timeoutMs) })
    await res.arrayBuffer()
    return res.ok
  } catch {
    return false
  }
}

/** A shell artifact that creates `markerPath` when it is ever executed (then keeps running like a service would). */
export function markerArtifact(markerPath: string): Buffer {
  return Buffer.from(`#!/bin/sh\ntouch '${markerPath.replace(/'/g, `'\\''`)}'\nexec sleep 1000\n`)
}

/** An artifact that prints a recognisable line to stderr and exits at once with status 3. */
export function crashingArtifact(line = 'demo: cannot start, config missing'): Buffer {
  return Buffer.from(`#!/bin/sh\necho '${line.replace(/'/g, `'\\''`)}' >&2\nexit 3\n`)
}

/**
 * The demo service, after starting a grandchild that leaves the replica's process group and session (`setsid`) with
 * an empty environment (no ownership markers) and writes its pid to `$DATA_DIR/escapee.pid`: only its cgroup still
 * ties it to the replica.
 */
export function escapingArtifact(): Buffer {
  return Buffer.from(`#!/bin/sh
env -i setsid sh -c 'echo $$ > "$1.tmp" && mv "$1.tmp" "$1"; while :; do sleep 1; done' bpo-escapee "$DATA_DIR/escapee.pid" </dev/null >/dev/null 2>&1 &
exec node '${runnableDemoServicePath().replace(/'/g, `'\\''`)}'
`)
}
