/**
 * A fake cloud VM that is a real SSH host: its own network namespace (a veth pair; the VM's "public address" is
 * 10.<b>.<c>.<d+2>, reachable from this machine), its own PID and mount namespaces, and a real OpenSSH sshd on port 22
 * with exactly the host key and authorized key the VM's cloud-init user data carried. Its "root disk" is a directory
 * bind-mounted at /var/lib/blueprint-operator; volumes are directories bind-mounted at /mnt/HC_Volume_<id>. Stopping
 * it kills every process inside (PID namespace) and removes the namespace; the disk directories stay.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process'
import { mkdir, mkdtemp, rm, writeFile, readdir, readFile, rmdir } from 'node:fs/promises'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { parseUserData } from '../../provisioners/cloud/userData.js'

const run = promisify(execFile)

export type FakeVm = {
  address: string
  /** Kill everything in the VM and remove its network; disks stay. */
  stop(): Promise<void>
  running(): boolean
}

export type StartFakeVmParameters = {
  /** The #cloud-config user data the provider got. */
  userData: string
  /** Directory holding the VM's root disk data (kept across stop/start). */
  rootDisk: string
  /** Volume id -> directory, mounted at /mnt/HC_Volume_<id>. */
  volumes?: Record<string, string>
}

// one address block per test process, one /30 per VM
const block = 100 + (process.pid % 100)
let seq = Math.floor(Math.random() * 1000)

/** Boot a fake VM; resolves once its sshd accepts connections. */
export async function startFakeVm(p: StartFakeVmParameters): Promise<FakeVm> {
  const cfg = parseUserData(p.userData)
  const n = seq++ % 16_000
  const c = n >> 6
  const d0 = (n & 63) * 4
  const hostSide = `10.${block}.${c}.${d0 + 1}`
  const address = `10.${block}.${c}.${d0 + 2}`
  const tag = Math.random().toString(36).slice(2, 8)
  const ns = `bpofake-${tag}`
  const dir = await mkdtemp(join(tmpdir(), 'bpo-fakevm-'))
  await writeFile(join(dir, 'host_ed25519'), cfg.ssh_keys.ed25519_private, { mode: 0o600 })
  await writeFile(join(dir, 'authorized_keys'), `${cfg.users.flatMap((u) => u.ssh_authorized_keys).join('\n')}\n`, { mode: 0o600 })
  await writeFile(
    join(dir, 'sshd_config'),
    [
      'Port 22',
      `ListenAddress ${address}`,
      `HostKey ${join(dir, 'host_ed25519')}`,
      'PidFile none',
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PubkeyAuthentication yes',
      `PermitRootLogin ${cfg.disable_root === false ? 'prohibit-password' : 'no'}`,
      'UsePAM no',
      'StrictModes no',
      'MaxSessions 64',
      'MaxStartups 64',
      'LogLevel ERROR',
      'Subsystem sftp internal-sftp',
      '',
    ].join('\n'),
  )
  await mkdir('/run/sshd', { recursive: true })
  await mkdir('/var/lib/blueprint-operator', { recursive: true })
  await mkdir(p.rootDisk, { recursive: true })
  const ip = (...args: string[]) => run('ip', args)
  await ip('netns', 'add', ns)
  try {
    await ip('link', 'add', `bf${tag}h`, 'type', 'veth', 'peer', 'name', `bf${tag}v`)
    await ip('link', 'set', `bf${tag}v`, 'netns', ns)
    await ip('addr', 'add', `${hostSide}/30`, 'dev', `bf${tag}h`)
    await ip('link', 'set', `bf${tag}h`, 'up')
    await ip('-n', ns, 'addr', 'add', `${address}/30`, 'dev', `bf${tag}v`)
    await ip('-n', ns, 'link', 'set', `bf${tag}v`, 'up')
    await ip('-n', ns, 'link', 'set', 'lo', 'up')
  } catch (err) {
    await ip('netns', 'del', ns).catch(() => undefined)
    throw err
  }
  const mounts = [
    `mount --bind "$1" /var/lib/blueprint-operator`,
    'mount -t tmpfs bpo-mnt /mnt',
    ...Object.entries(p.volumes ?? {}).map(([id, v]) => `mkdir -p /mnt/HC_Volume_${id} && mount --bind '${v}' /mnt/HC_Volume_${id}`),
  ]
  const script = `set -e\n${mounts.join('\n')}\nexec /usr/sbin/sshd -D -e -f "$2"\n`
  for (const v of Object.values(p.volumes ?? {})) await mkdir(v, { recursive: true })
  const child: ChildProcess = spawn(
    'nsenter',
    [`--net=/run/netns/${ns}`, 'unshare', '--mount', '--pid', '--fork', '--mount-proc', '--kill-child', '--propagation', 'private', 'sh', '-c', script, 'fakevm', p.rootDisk, join(dir, 'sshd_config')],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  )
  let alive = true
  let stderr = ''
  child.stderr!.setEncoding('utf8')
  child.stderr!.on('data', (x: string) => (stderr += x))
  child.once('exit', () => (alive = false))
  const deadline = Date.now() + 20_000
  while (!(await canConnect(address, 22))) {
    if (!alive || Date.now() > deadline) {
      child.kill('SIGKILL')
      await ip('netns', 'del', ns).catch(() => undefined)
      await rm(dir, { recursive: true, force: true })
      throw new Error(`fake VM did not boot: ${stderr}`)
    }
    await new Promise((r) => setTimeout(r, 50))
  }
  let stopping: Promise<void> | undefined
  return {
    address,
    running: () => alive,
    stop() {
      stopping ??= (async () => {
        if (alive) {
          const gone = new Promise<void>((r) => child.once('exit', () => r()))
          // --kill-child: the namespace's init dies with unshare, and every process of the VM with it
          child.kill('SIGKILL')
          await Promise.race([gone, new Promise((r) => setTimeout(r, 5000))])
        }
        await ip('netns', 'del', ns).catch(() => undefined)
        await removeCgroups(p.rootDisk)
        for (const v of Object.values(p.volumes ?? {})) await removeCgroups(v)
        await rm(dir, { recursive: true, force: true })
      })()
      return stopping
    },
  }
}

/** The host agent records its replicas' cgroups in `cgroups` files; empty ones are removed with the VM. */
async function removeCgroups(disk: string) {
  const files = await readdir(disk, { recursive: true }).catch(() => [] as string[])
  for (const f of files.filter((x) => x.endsWith('/cgroups'))) {
    for (const g of (await readFile(join(disk, f), 'utf8').catch(() => '')).split('\n').filter((x) => x.startsWith('/sys/fs/cgroup/'))) {
      await rmdir(g).catch(() => undefined)
    }
  }
}

function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, host)
    s.setTimeout(1000, () => {
      s.destroy()
      resolve(false)
    })
    s.once('connect', () => {
      s.destroy()
      resolve(true)
    })
    s.once('error', () => resolve(false))
  })
}
