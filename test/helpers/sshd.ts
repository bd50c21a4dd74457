/**
 * Test helper: a real OpenSSH server (Debian `openssh-server`) on 127.0.0.1 with a generated ed25519 host key and
 * key-only login for the current user. Each server lives in its own temp dir and is killed by `stop()`.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, writeFile, rm, mkdir } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir, userInfo } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)

export type KeyPair = {
  /** OpenSSH private key (PEM-like "OPENSSH PRIVATE KEY" block). */
  privateKey: string
  /** "ssh-ed25519 AAAA..." without comment. */
  publicKey: string
}

export type Sshd = {
  address: string
  port: number
  user: string
  /** Client key authorized on this server. */
  privateKey: string
  /** The server's host key, "ssh-ed25519 AAAA..." form (what an operator pins). */
  hostKey: string
  dir: string
  pid: number
  /** True while the server process runs. */
  running(): boolean
  /** Kill the server (not sessions' detached children) and remove its temp dir unless `keepDir`. */
  stop(o?: { keepDir?: boolean }): Promise<void>
}

export type StartSshdOptions = {
  /** Environment set for every session (sshd `SetEnv`). */
  env?: Record<string, string>
  /** Authorize this client key instead of generating one. */
  clientKey?: KeyPair
}

/**
 * Why the real-sshd suites cannot run here (a one-line reason naming what to install), or undefined when they can.
 * `.ci/run` installs these packages; elsewhere the suites skip instead of failing for the machine's sake.
 */
export function sshdMissing(): string | undefined {
  for (const [bin, pkg] of [['/usr/sbin/sshd', 'openssh-server'], ['/usr/bin/ssh-keygen', 'openssh-client']] as const)
    if (!existsSync(bin)) return `${bin} is missing: apt-get install -y ${pkg}`
  return undefined
}

/** Generate an ed25519 key pair with ssh-keygen (no passphrase). */
export async function generateKeyPair(dir?: string): Promise<KeyPair> {
  const d = dir ?? (await mkdtemp(join(tmpdir(), 'bpo-key-')))
  const file = join(d, `id_${Math.random().toString(36).slice(2)}`)
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'bpo-test', '-f', file])
  const privateKey = await readFile(file, 'utf8')
  const publicKey = (await readFile(`${file}.pub`, 'utf8')).trim().split(/\s+/).slice(0, 2).join(' ')
  if (!dir) await rm(d, { recursive: true, force: true })
  return { privateKey, publicKey }
}

/** A TCP port that was free a moment ago on 127.0.0.1 (sshd cannot listen on 0 and report it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const a = s.address()
      const port = typeof a === 'object' && a ? a.port : 0
      s.close(() => resolve(port))
    })
  })
}

/** Start sshd on 127.0.0.1 with a fresh host key and client key; resolves once it listens. */
export async function startSshd(o: StartSshdOptions = {}): Promise<Sshd> {
  await mkdir('/run/sshd', { recursive: true })
  const dir = await mkdtemp(join(tmpdir(), 'bpo-sshd-'))
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'host', '-f', join(dir, 'host_ed25519')])
  const hostKey = (await readFile(join(dir, 'host_ed25519.pub'), 'utf8')).trim().split(/\s+/).slice(0, 2).join(' ')
  const client = o.clientKey ?? (await generateKeyPair(dir))
  await writeFile(join(dir, 'authorized_keys'), `${client.publicKey} bpo-test\n`, { mode: 0o600 })
  let lastErr = ''
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort()
    const conf = [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${join(dir, 'host_ed25519')}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PubkeyAuthentication yes',
      'PermitRootLogin prohibit-password',
      'UsePAM no',
      'StrictModes no',
      'MaxSessions 64',
      'MaxStartups 64',
      'LogLevel ERROR',
      'Subsystem sftp internal-sftp',
      // sshd keeps only the first SetEnv line: every variable goes on one
      ...(Object.keys(o.env ?? {}).length ? [`SetEnv ${Object.entries(o.env ?? {}).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(' ')}`] : []),
    ].join('\n')
    await writeFile(join(dir, 'sshd_config'), `${conf}\n`)
    const child = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', join(dir, 'sshd_config')], { stdio: ['ignore', 'ignore', 'pipe'] })
    const ok = await waitListening(child, port)
    if (ok === true) {
      let alive = true
      child.once('exit', () => (alive = false))
      return {
        address: '127.0.0.1',
        port,
        user: userInfo().username,
        privateKey: client.privateKey,
        hostKey,
        dir,
        pid: child.pid!,
        running: () => alive,
        async stop(so) {
          if (alive) {
            const gone = new Promise<void>((r) => child.once('exit', () => r()))
            child.kill('SIGTERM')
            await Promise.race([gone, new Promise((r) => setTimeout(r, 5000))])
            if (alive) child.kill('SIGKILL')
          }
          if (!so?.keepDir) await rm(dir, { recursive: true, force: true })
        },
      }
    }
    lastErr = ok
    child.kill('SIGKILL')
  }
  await rm(dir, { recursive: true, force: true })
  throw new Error(`sshd did not start: ${lastErr}`)
}

async function waitListening(child: ChildProcess, port: number): Promise<true | string> {
  let stderr = ''
  child.stderr!.setEncoding('utf8')
  child.stderr!.on('data', (d: string) => (stderr += d))
  const deadline = Date.now() + 20_000
  while (Date.now() < deadline) {
    if (child.exitCode !== null) return stderr || `exit ${child.exitCode}`
    if (await canConnect(port)) return true
    await new Promise((r) => setTimeout(r, 100))
  }
  return `timeout: ${stderr}`
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    import('node:net').then(({ connect }) => {
      const s = connect(port, '127.0.0.1')
      s.once('connect', () => {
        s.destroy()
        resolve(true)
      })
      s.once('error', () => resolve(false))
    })
  })
}
