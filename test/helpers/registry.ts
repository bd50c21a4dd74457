/**
 * Test helper: a real OCI registry (Debian `docker-registry`) on 127.0.0.1 and a tiny image pushed to it by digest,
 * built with podman from Debian's static busybox (no pull from outside). Podman runs with its own storage, runtime
 * and registry config from a temp dir; `env` carries those settings to other processes (e.g. sshd `SetEnv`).
 *
 * The image's entrypoint counts its starts in /data/starts, writes /data/healthz and serves /data with busybox httpd
 * on $PORT (default 8080): GET /healthz (and GET /) is the health check, GET /starts proves a kept data volume.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { freePort } from './sshd.js'

const run = promisify(execFile)

export type LocalRegistry = {
  /** "127.0.0.1:<port>" */
  address: string
  /** Environment that makes podman use this helper's storage, runtime (runc) and insecure local registry. */
  env: Record<string, string>
  /** Repository of the pushed image, without tag or digest, e.g. "127.0.0.1:41234/bpo-echo". */
  image: string
  /** "sha256:<64 hex>" of the pushed manifest. */
  digest: string
  /** Run podman with `env`. */
  podman(args: string[]): Promise<{ stdout: string; stderr: string }>
  /** Remove every container of this storage, stop the registry, delete the temp dir. */
  stop(): Promise<void>
}

/** Why the live container tests cannot run here, or undefined when they can. */
export function registryUnavailable(): string | undefined {
  for (const bin of ['/usr/bin/podman', '/usr/bin/docker-registry', '/bin/busybox', '/usr/sbin/runc']) {
    if (!existsSync(bin) && !(bin === '/usr/sbin/runc' && existsSync('/usr/bin/runc'))) return `${bin} is missing (apt-get install -y podman runc uidmap slirp4netns fuse-overlayfs busybox-static docker-registry)`
  }
  return undefined
}

const ENTRY = `n=$(( $(/bin/busybox cat /data/starts 2>/dev/null || echo 0) + 1 ))
echo "$n" > /data/starts
echo ok > /data/healthz
echo ok > /data/index.html
/bin/busybox httpd -f -p "\${PORT:-8080}" -h /data &
pid=$!
# as PID 1 the shell ignores SIGTERM unless it traps it: stop promptly like a well-behaved service
trap '/bin/busybox kill "$pid"; exit 0' TERM INT
wait "$pid"
`

/** Start the registry, build and push the image; resolves with its digest. */
export async function startLocalRegistry(): Promise<LocalRegistry> {
  const dir = await mkdtemp(join(tmpdir(), 'bpo-registry-'))
  const port = await freePort()
  const address = `127.0.0.1:${port}`
  await writeFile(
    join(dir, 'containers.conf'),
    // crun fails on this machine's hybrid cgroups and default rlimits are refused (MACHINE-NOTES)
    '[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]\n',
  )
  await writeFile(join(dir, 'storage.conf'), `[storage]\ndriver = "vfs"\ngraphroot = "${join(dir, 'graph')}"\nrunroot = "${join(dir, 'run')}"\n`)
  await writeFile(join(dir, 'registries.conf'), `unqualified-search-registries = []\n[[registry]]\nlocation = "${address}"\ninsecure = true\n`)
  await writeFile(join(dir, 'registry.yml'), `version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: ${join(dir, 'blobs')}\nhttp:\n  addr: ${address}\n`)
  const env = {
    CONTAINERS_CONF: join(dir, 'containers.conf'),
    CONTAINERS_STORAGE_CONF: join(dir, 'storage.conf'),
    CONTAINERS_REGISTRIES_CONF: join(dir, 'registries.conf'),
  }
  const podman = (args: string[]) => run('podman', args, { env: { ...process.env, ...env }, maxBuffer: 16 * 1024 * 1024 })
  let registry: ChildProcess | undefined
  const stop = async () => {
    await podman(['rm', '-fa', '-t', '0']).catch(() => undefined)
    if (registry && registry.exitCode === null) {
      const gone = new Promise((r) => registry!.once('exit', r))
      registry.kill('SIGTERM')
      await Promise.race([gone, new Promise((r) => setTimeout(r, 3000))])
      if (registry.exitCode === null) registry.kill('SIGKILL')
    }
    await rm(dir, { recursive: true, force: true })
  }
  try {
    registry = spawn('/usr/bin/docker-registry', ['serve', join(dir, 'registry.yml')], { stdio: 'ignore' })
    await waitHttp(`http://${address}/v2/`, 20_000)
    const ctx = join(dir, 'ctx')
    await mkdir(ctx, { recursive: true })
    await copyFile('/bin/busybox', join(ctx, 'busybox'))
    await writeFile(join(ctx, 'entry.sh'), ENTRY)
    await writeFile(join(ctx, 'Containerfile'), 'FROM scratch\nCOPY busybox /bin/busybox\nCOPY entry.sh /entry.sh\nENTRYPOINT ["/bin/busybox", "sh", "/entry.sh"]\n')
    const image = `${address}/bpo-echo`
    await podman(['build', '-q', '-t', `${image}:v1`, ctx])
    await podman(['push', '--digestfile', join(dir, 'digest'), `${image}:v1`])
    const digest = (await readFile(join(dir, 'digest'), 'utf8')).trim()
    // hosts must pull by digest from the registry, not find the build in local storage
    await podman(['rmi', '-f', `${image}:v1`])
    return { address, env, image, digest, podman, stop }
  } catch (err) {
    await stop()
    throw err
  }
}

async function waitHttp(url: string, ms: number): Promise<void> {
  const end = Date.now() + ms
  for (;;) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1_000) })
      await res.arrayBuffer()
      if (res.status < 500) return
    } catch {
      // not up yet
    }
    if (Date.now() > end) throw new Error(`${url} did not answer within ${ms} ms`)
    await new Promise((r) => setTimeout(r, 100))
  }
}
