/**
 * The Docker image, built and run for real with podman: scripts/build-image.sh makes a Debian base with mmdebstrap
 * (standing in for node:20-slim, which cannot be pulled here) and builds the repo's Dockerfile on it. The container
 * then runs against a real anvil chain on the host (reached over slirp4netns at 10.0.2.2) with a mounted
 * operator.toml, the key given by file: reference and a named volume: /healthz and /readyz answer on the published
 * port, the HEALTHCHECK passes, a paid request goes active inside the container, the state lands on the volume owned
 * by the image's user, SIGTERM stops it with exit 0, and a new container on the same volume keeps the service.
 *
 * Podman runs with its own storage, runtime (runc) and ulimits in a temp dir, all removed afterwards.
 */
import { execFile, spawn } from 'node:child_process'
import { chownSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync, closeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { stringify } from 'smol-toml'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { freePort } from '../helpers/sshd.js'
import { startStack, waitFor, type Stack } from '../helpers/stack.js'

const root = fileURLToPath(new URL('../../', import.meta.url))
const run = promisify(execFile)

/** Why the image cannot be built and run here, or undefined when it can. */
function imageUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (mmdebstrap and podman build a root filesystem)'
  const need = ['/usr/bin/podman', '/usr/bin/mmdebstrap', '/usr/bin/slirp4netns']
  const exists = (p: string) => {
    try {
      statSync(p)
      return true
    } catch {
      return false
    }
  }
  for (const bin of need) if (!exists(bin)) return `${bin} is missing (apt-get install -y podman runc uidmap slirp4netns fuse-overlayfs mmdebstrap)`
  if (!exists('/usr/sbin/runc') && !exists('/usr/bin/runc')) return 'runc is missing (apt-get install -y runc)'
  return undefined
}

const missing = imageUnavailable()
if (missing) test.skip(`image build and run: ${missing}`, () => undefined)

const IMAGE = 'localhost/blueprint-operator:test'
const BASE = 'localhost/node:20-trixie-slim'
/** The container user of the official node images, which the image runs as. */
const NODE_UID = 1000
/** The host's loopback as slirp4netns shows it to the container (allow_host_loopback). */
const HOST = '10.0.2.2'

describe.skipIf(!!missing)('packaging: the image, built with podman and run against a host anvil', () => {
  let dir: string
  let env: Record<string, string>
  let stack: Stack | undefined
  let port: number
  let volume: string
  let serviceId: bigint
  let keyHex: string

  const podman = (args: string[], timeout = 120_000) => run('podman', args, { env: { ...process.env, ...env }, maxBuffer: 64 * 1024 * 1024, timeout })
  const podmanStatus = async (args: string[]) => {
    try {
      const r = await podman(args)
      return { code: 0, ...r }
    } catch (err) {
      const e = err as { code?: number; stdout?: string; stderr?: string }
      return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' }
    }
  }
  const url = (path: string) => `http://127.0.0.1:${port}${path}`

  /** `podman run -d` of the image on the named volume with the mounted config and key; resolves with the start time. */
  async function startContainer(name: string): Promise<number> {
    const t0 = Date.now()
    await podman([
      'run', '-d', '--name', name,
      '--network', 'slirp4netns:allow_host_loopback=true',
      '-p', `127.0.0.1:${port}:9464`,
      '-v', `${volume}:/var/lib/blueprint-operator`,
      '-v', `${join(dir, 'etc')}:/etc/blueprint-operator:ro`,
      '-v', `${join(dir, 'secrets')}:/run/secrets:ro`,
      IMAGE,
    ])
    await waitFor(`${name} /healthz`, async () => (await fetch(url('/healthz'), { signal: AbortSignal.timeout(2000) })).status === 200, 60_000, 200)
    return Date.now() - t0
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'bpo-image-'))
    // crun fails on this machine's hybrid cgroups and podman's default rlimits are refused (MACHINE-NOTES)
    writeFileSync(
      join(dir, 'containers.conf'),
      `[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\ntmp_dir = "${join(dir, 'tmp')}"\n` +
        '[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]\n',
    )
    writeFileSync(join(dir, 'storage.conf'), `[storage]\ndriver = "overlay"\ngraphroot = "${join(dir, 'graph')}"\nrunroot = "${join(dir, 'run')}"\n`)
    env = { CONTAINERS_CONF: join(dir, 'containers.conf'), CONTAINERS_STORAGE_CONF: join(dir, 'storage.conf') }

    // the build: base rootfs (mmdebstrap) then the Dockerfile; its output goes to a file, shown when it fails
    const log = join(dir, 'build.log')
    const fd = openSync(log, 'w')
    const t0 = Date.now()
    const code = await new Promise<number | null>((resolve) => {
      const child = spawn('bash', [join(root, 'scripts/build-image.sh'), IMAGE], {
        cwd: root,
        env: { ...process.env, ...env, BPO_BASE_IMAGE: BASE },
        stdio: ['ignore', fd, fd],
      })
      child.on('exit', resolve)
    })
    closeSync(fd)
    const out = readFileSync(log, 'utf8')
    if (code !== 0) throw new Error(`scripts/build-image.sh exited ${code}:\n${out.slice(-6000)}`)
    console.log(`image build: ${Math.round((Date.now() - t0) / 1000)} s in all; ${out.match(/^base: .*$/m)?.[0]}; ${out.match(/^image: .*$/m)?.[0]}`)

    stack = await startStack({ blockTime: 1 })
    port = await freePort()
    volume = `bpo-test-${Math.random().toString(36).slice(2, 8)}`
    await podman(['volume', 'create', volume])
    keyHex = stack.operatorKey.slice(2).toLowerCase()
    // the key by file: reference, readable only by the container's user
    mkdirSync(join(dir, 'secrets'))
    writeFileSync(join(dir, 'secrets/operator-key'), `${stack.operatorKey}\n`, { mode: 0o600 })
    chownSync(join(dir, 'secrets/operator-key'), NODE_UID, NODE_UID)
    const rpc = new URL(stack.chain.rpcUrl)
    const doc = {
      // data_dir and [http] listen come from the image's BPO_DATA_DIR and BPO_HTTP_LISTEN
      operator: { id: stack.operatorId },
      chain: {
        rpc_url: `http://${HOST}:${rpc.port}`,
        chain_id: stack.chain.chainId,
        private_key: 'file:/run/secrets/operator-key',
        registry: stack.chain.addresses.registry,
        escrow: stack.chain.addresses.escrow,
        confirmations: 1,
        poll_interval_ms: 200,
        start_block: Number(stack.chain.addresses.deployBlock),
      },
      loop: { interval_ms: 500 },
      deploy: { attempts: 2, backoff_ms: 200, health_timeout_ms: 30_000 },
      http: { enabled: true },
      log: { level: 'info' },
      providers: {
        artifact_allow_hosts: [HOST],
        // the image runs as `node`: replicas share its uid (workload_user needs root)
        local: { enabled: true, vcpu: 2, memory_gib: 2, storage_gib: 5, hourly_usd: '0.01', port_range: [20_000, 20_099], unsafe_workloads_share_daemon_uid: true },
      },
    }
    mkdirSync(join(dir, 'etc'))
    writeFileSync(join(dir, 'etc/operator.toml'), stringify(doc), { mode: 0o644 })
  }, 1_800_000)

  afterAll(async () => {
    if (!dir) return
    await podman(['rm', '-fa', '-t', '0']).catch(() => undefined)
    await podman(['volume', 'rm', '-fa']).catch(() => undefined)
    // this test's storage holds only what it built: the image, its base and the build cache
    await podman(['system', 'reset', '--force'], 300_000).catch(() => undefined)
    await stack?.stop()
    rmSync(dir, { recursive: true, force: true })
  }, 600_000)

  test('default: the image runs node 20 as uid 1000, declares its port, volume and HEALTHCHECK, and holds the locked tree', async () => {
    const config = JSON.parse((await podman(['image', 'inspect', IMAGE, '--format', '{{json .Config}}'])).stdout) as {
      User: string
      ExposedPorts: Record<string, unknown>
      Volumes: Record<string, unknown>
      Env: string[]
    }
    expect(config.User).toBe('node')
    expect(Object.keys(config.ExposedPorts)).toEqual(['9464/tcp'])
    expect(Object.keys(config.Volumes)).toEqual(['/var/lib/blueprint-operator'])
    expect(config.Env).toEqual(expect.arrayContaining(['BPO_HTTP_LISTEN=0.0.0.0:9464', 'BPO_DATA_DIR=/var/lib/blueprint-operator']))
    // an OCI image config has no HEALTHCHECK: the script builds in Docker format to keep it
    const health = JSON.parse((await podman(['image', 'inspect', IMAGE, '--format', '{{json .HealthCheck}}'])).stdout) as { Test?: string[] } | null
    expect(health?.Test).toEqual(['CMD', 'node', 'bin/healthcheck.mjs'])

    // every package in the image is the one the committed lock names, at the same place; no dev dependency
    const probe = `const fs=require('fs'),p=require('path');const out={};const walk=(d,rel)=>{for(const n of fs.readdirSync(d)){if(n.startsWith('.'))continue;const f=p.join(d,n),r=rel+n;if(n.startsWith('@')){walk(f,r+'/');continue}try{out['node_modules/'+r]=JSON.parse(fs.readFileSync(p.join(f,'package.json'),'utf8')).version}catch{}const nm=p.join(f,'node_modules');if(fs.existsSync(nm))walk(nm,r+'/node_modules/')}};walk('/app/node_modules','');console.log(JSON.stringify({node:process.version,uid:process.getuid(),out}))`
    const r = JSON.parse((await podman(['run', '--rm', '--entrypoint', 'node', IMAGE, '-e', probe])).stdout) as { node: string; uid: number; out: Record<string, string> }
    expect(r.node).toMatch(/^v20\./)
    expect(r.uid).toBe(NODE_UID)
    const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version?: string; dev?: boolean }> }
    const installed = Object.entries(r.out)
    expect(installed.length).toBeGreaterThan(100)
    const drift = installed.filter(([path, version]) => lock.packages[path]?.version !== version)
    expect(drift).toEqual([])
    expect(installed.filter(([path]) => lock.packages[path]?.dev)).toEqual([])
    expect(r.out['node_modules/better-sqlite3']).toBe(lock.packages['node_modules/better-sqlite3']!.version)
  })

  test('behavior: against a host anvil — healthy, ready, a paid request goes active, state on the volume owned by node', { timeout: 300_000 }, async () => {
    const startMs = await startContainer('bpo-1')
    console.log(`image start: /healthz answered ${startMs} ms after podman run`)
    const ready = await waitFor('/readyz 200', async () => {
      const res = await fetch(url('/readyz'), { signal: AbortSignal.timeout(2000) })
      return res.status === 200 && ((await res.json()) as { ready: boolean; checks: Array<{ name: string; ok: boolean }> })
    }, 60_000, 250)
    expect(ready.ready).toBe(true)
    expect(ready.checks.filter((c) => !c.ok)).toEqual([])

    // the image's HEALTHCHECK, run by podman inside the container
    const hc = await podmanStatus(['healthcheck', 'run', 'bpo-1'])
    expect(hc.code, hc.stderr).toBe(0)
    expect((await podman(['inspect', 'bpo-1', '--format', '{{.State.Health.Status}}'])).stdout.trim()).toBe('healthy')

    // a customer's paid request, heard over the chain and provisioned inside the container
    const artifact = new URL(stack!.artifacts.urlOf('demo-service'))
    artifact.hostname = HOST
    const blueprintId = await stack!.registerDemo({ url: artifact.href })
    ;({ serviceId } = await stack!.chain.requestService({ blueprintId, deposit: 3_600_000n, ttlSeconds: 3600n }))
    const active = await waitFor('service active', async () => {
      const list = (await (await fetch(url('/api/services'))).json()) as Array<{ serviceId: string; state: string; endpoints: string[] }>
      return list.find((s) => s.serviceId === String(serviceId) && s.state === 'active')
    }, 120_000, 500)
    // its replica answers inside the container (the endpoint is the container's loopback)
    const endpoint = active.endpoints[0]!
    const inside = await podman(['exec', 'bpo-1', 'node', '-e', `fetch(${JSON.stringify(endpoint)}).then((r) => console.log(r.status))`])
    expect(inside.stdout.trim()).toBe('200')

    // the state is on the named volume, owned by the image's user and private to it
    const mount = (await podman(['volume', 'inspect', volume, '--format', '{{.Mountpoint}}'])).stdout.trim()
    const top = statSync(mount)
    expect([top.uid, top.mode & 0o777]).toEqual([NODE_UID, 0o700])
    const db = statSync(join(mount, 'state.sqlite'))
    expect([db.uid, db.mode & 0o077]).toEqual([NODE_UID, 0])

    // the key was given by reference and is never logged
    const logs = await podman(['logs', 'bpo-1'])
    expect(logs.stdout + logs.stderr).toMatch(/"msg":"started"/)
    expect((logs.stdout + logs.stderr).toLowerCase()).not.toContain(keyHex)
  })

  test('behavior: SIGTERM stops it with exit 0; a new container on the same volume keeps the service', { timeout: 300_000 }, async () => {
    expect(serviceId).toBeDefined()
    const t0 = Date.now()
    // podman stop sends the image's STOPSIGNAL (SIGTERM) and SIGKILLs (exit 137) only after the timeout
    await podman(['stop', '-t', '60', 'bpo-1'], 90_000)
    console.log(`image stop: ${Date.now() - t0} ms`)
    expect((await podman(['inspect', 'bpo-1', '--format', '{{.State.ExitCode}}'])).stdout.trim()).toBe('0')
    const logs = await podman(['logs', 'bpo-1'])
    expect(logs.stdout + logs.stderr).toMatch(/"signal":"SIGTERM","msg":"shutting down"/)
    expect(logs.stdout + logs.stderr).toMatch(/"msg":"stopped"/)
    await podman(['rm', 'bpo-1'])

    const startMs = await startContainer('bpo-2')
    console.log(`image restart: /healthz answered ${startMs} ms after podman run`)
    // known at once from the volume, before the chain is read again
    const first = (await (await fetch(url(`/api/services/${serviceId}`))).json()) as { timeline: Array<{ to: string }> }
    expect(first.timeline.map((t) => t.to)).toContain('active')
    // and served again: the replica went with the old container, the daemon brings it back
    await waitFor('service active again', async () => {
      const list = (await (await fetch(url('/api/services'))).json()) as Array<{ serviceId: string; state: string; endpoints: string[] }>
      const s = list.find((x) => x.serviceId === String(serviceId))
      if (s?.state !== 'active' || !s.endpoints[0]) return false
      const r = await podmanStatus(['exec', 'bpo-2', 'node', '-e', `fetch(${JSON.stringify(s.endpoints[0])}).then((r) => process.exit(r.status === 200 ? 0 : 1), () => process.exit(1))`])
      return r.code === 0
    }, 120_000, 1000)
    // resumed, not heard anew: the request is in its history once
    const after = (await (await fetch(url(`/api/services/${serviceId}`))).json()) as { timeline: Array<{ to: string }> }
    expect(after.timeline.filter((t) => t.to === 'requested')).toHaveLength(1)
  })
})
