/**
 * SSH connections to the operator's hosts (npm ssh2): one cached connection per host, pinned host key, key-only
 * auth, every exec/transfer bounded by a timeout and an AbortSignal. Commands are argv arrays quoted by shellQuote.
 */
import { Client, type ClientChannel, type SFTPWrapper } from 'ssh2'
import type { Common } from '../../core/common.js'
import { AbortedError, BaseError, TimeoutError } from '../../core/errors.js'
import { TargetUnreachableError } from '../errors.js'
import { HostKeyMismatchError, SshAuthError } from './errors.js'
import { shellQuote } from './shellQuote.js'
import type { SshHost } from './types.js'

export type ExecResult = { code: number | null; signal: string | undefined; stdout: string; stderr: string }

export type ExecOptions = {
  signal?: AbortSignal | undefined
  timeoutMs?: number | undefined
  /** Bytes written to the command's stdin (then closed). */
  stdin?: string | Buffer | undefined
  /** What the command does, for errors and logs (default: its first word). */
  what?: string | undefined
}

export type SshPool = {
  /** Run `argv` (quoted with shellQuote) on `host`; resolves with the exit code, never throws on non-zero. */
  exec(host: SshHost, argv: readonly string[], o?: ExecOptions): Promise<ExecResult>
  /** Write `data` to `remotePath` (mode `mode`) over SFTP. */
  writeFile(host: SshHost, remotePath: string, data: string | Buffer, mode: number, o?: ExecOptions): Promise<void>
  /** Upload a local file to `remotePath` over SFTP. */
  upload(host: SshHost, localPath: string, remotePath: string, mode: number, o?: ExecOptions): Promise<void>
  /** Drop the cached connection of one host (next call reconnects). */
  drop(hostName: string): void
  close(): Promise<void>
}

export type SshPoolParameters = {
  /** TCP connect + handshake + auth, in ms. Default 10_000. */
  connectTimeoutMs?: number
  /** Default per-command timeout in ms. Default 60_000. */
  commandTimeoutMs?: number
}

const MAX_OUTPUT = 8 * 1024 * 1024

/** Parse a pinned "ssh-ed25519 AAAA..." key into its type and raw blob. */
export function parsePinnedKey(hostKey: string): { type: string; blob: Buffer } {
  const parts = hostKey.trim().split(/\s+/)
  const [type, b64] = parts
  if (!type || !b64 || !/^[A-Za-z0-9+/]+=*$/.test(b64)) throw new TypeError('pinned host key must look like "ssh-ed25519 AAAA..."')
  const blob = Buffer.from(b64, 'base64')
  // the blob starts with its own type name; a pin whose two halves disagree is a configuration error
  const len = blob.length >= 4 ? blob.readUInt32BE(0) : -1
  if (len <= 0 || blob.length < 4 + len || blob.subarray(4, 4 + len).toString('latin1') !== type) throw new TypeError(`pinned host key blob is not a ${type} key`)
  return { type, blob }
}

/** A pool of SSH connections, one per host name. */
export function createSshPool(common: Common, p: SshPoolParameters = {}): SshPool {
  const connectTimeoutMs = p.connectTimeoutMs ?? 10_000
  const commandTimeoutMs = p.commandTimeoutMs ?? 60_000
  const conns = new Map<string, Promise<Client>>()
  let closed = false

  function connect(host: SshHost, signal?: AbortSignal): Promise<Client> {
    const cached = conns.get(host.name)
    if (cached) return cached
    const pinned = parsePinnedKey(host.hostKey)
    const pending = new Promise<Client>((resolve, reject) => {
      const c = new Client()
      let mismatch: string | undefined
      let settled = false
      const fail = (err: unknown) => {
        if (settled) return
        settled = true
        conns.delete(host.name)
        clearTimeout(timer)
        signal?.removeEventListener('abort', onAbort)
        c.destroy()
        reject(err)
      }
      const timer = setTimeout(() => fail(new TargetUnreachableError(`ssh host ${host.name}`, new TimeoutError(`ssh connect to ${host.address}:${host.port}`, connectTimeoutMs))), connectTimeoutMs)
      const onAbort = () => fail(new AbortedError(`ssh connect to ${host.name}`, signal?.reason))
      signal?.addEventListener('abort', onAbort, { once: true })
      c.on('ready', () => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        signal?.removeEventListener('abort', onAbort)
        resolve(c)
      })
      c.on('error', (err: Error & { level?: string }) => {
        if (!settled) {
          if (mismatch !== undefined) fail(new HostKeyMismatchError(host.name, pinned.type, mismatch))
          else if (err.level === 'client-authentication') fail(new SshAuthError(host.name, host.user, err))
          // algorithm negotiation: the host offers no key of the pinned type, which is a mismatch too
          else if (err.level === 'handshake') fail(new HostKeyMismatchError(host.name, pinned.type, `no ${pinned.type} host key offered (${err.message})`))
          else fail(new TargetUnreachableError(`ssh host ${host.name}`, err, [`${host.address}:${host.port}: ${err.message}`]))
        } else {
          common.logger.debug({ host: host.name, err: err.message }, 'ssh connection error')
          conns.delete(host.name)
        }
      })
      c.on('close', () => {
        if (conns.get(host.name) === pending) conns.delete(host.name)
        if (!settled) fail(mismatch !== undefined ? new HostKeyMismatchError(host.name, pinned.type, mismatch) : new TargetUnreachableError(`ssh host ${host.name}`, undefined, ['connection closed during handshake']))
      })
      c.connect({
        host: host.address,
        port: host.port,
        username: host.user,
        privateKey: host.privateKey,
        readyTimeout: connectTimeoutMs,
        keepaliveInterval: 15_000,
        keepaliveCountMax: 3,
        // ask only for the pinned key's type, so a host with several keys presents the one we can check
        algorithms: { serverHostKey: [pinned.type] as never },
        hostVerifier: (key: Buffer) => {
          if (Buffer.isBuffer(key) && key.equals(pinned.blob)) return true
          mismatch = Buffer.isBuffer(key) ? `${keyType(key)} ${key.toString('base64').slice(0, 24)}...` : 'unknown'
          common.logger.error({ host: host.name, address: host.address }, 'ssh host key does not match the pinned key; refusing')
          return false
        },
      })
    })
    conns.set(host.name, pending)
    return pending
  }

  async function channel<T>(host: SshHost, what: string, o: ExecOptions, fn: (c: Client, done: (err: unknown, v?: T) => void, onCancel: (f: () => void) => void) => void): Promise<T> {
    if (closed) throw new BaseError('ssh pool is closed', { code: 'SSH_POOL_CLOSED' })
    if (o.signal?.aborted) throw new AbortedError(what, o.signal.reason)
    const c = await connect(host, o.signal)
    const ms = o.timeoutMs ?? commandTimeoutMs
    return new Promise<T>((resolve, reject) => {
      let settled = false
      let cancel: (() => void) | undefined
      const finish = (err: unknown, v?: T) => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        o.signal?.removeEventListener('abort', onAbort)
        c.removeListener('close', onClose)
        if (err) reject(err)
        else resolve(v as T)
      }
      const timer = setTimeout(() => {
        cancel?.()
        finish(new TimeoutError(`${what} on ${host.name}`, ms))
      }, ms)
      const onAbort = () => {
        cancel?.()
        finish(new AbortedError(`${what} on ${host.name}`, o.signal?.reason))
      }
      const onClose = () => finish(new TargetUnreachableError(`ssh host ${host.name}`, undefined, ['connection closed during a command']))
      o.signal?.addEventListener('abort', onAbort, { once: true })
      c.once('close', onClose)
      try {
        fn(c, finish, (f) => (cancel = f))
      } catch (err) {
        finish(err)
      }
    })
  }

  const withSftp = (host: SshHost, what: string, o: ExecOptions, op: (sftp: SFTPWrapper, cb: (err?: Error | null) => void) => void) =>
    channel<void>(host, what, o, (c, done, onCancel) => {
      c.sftp((err, sftp) => {
        if (err) return done(new TargetUnreachableError(`ssh host ${host.name}`, err, [`sftp: ${err.message}`]))
        onCancel(() => sftp.end())
        op(sftp, (e) => {
          sftp.end()
          done(e ? new BaseError(`${what} on ${host.name} failed`, { code: 'SSH_SFTP_FAILED', retryable: true, cause: e, details: [e.message] }) : undefined)
        })
      })
    })

  return {
    exec(host, argv, o = {}) {
      const cmd = shellQuote(argv)
      return channel<ExecResult>(host, o.what ?? `remote ${argv[0] ?? ''}`, o, (c, done, onCancel) => {
        c.exec(cmd, (err: Error | undefined, stream: ClientChannel) => {
          if (err) return done(new TargetUnreachableError(`ssh host ${host.name}`, err, [`exec: ${err.message}`]))
          onCancel(() => stream.close())
          let stdout = ''
          let stderr = ''
          stream.setEncoding('utf8')
          stream.stderr.setEncoding('utf8')
          stream.on('data', (d: string) => {
            if (stdout.length < MAX_OUTPUT) stdout += d
          })
          stream.stderr.on('data', (d: string) => {
            if (stderr.length < MAX_OUTPUT) stderr += d
          })
          stream.on('close', (code: number | null, signal?: string) => done(undefined, { code: code ?? null, signal, stdout, stderr }))
          if (o.stdin !== undefined) stream.end(o.stdin)
          else stream.end()
        })
      })
    },
    writeFile(host, remotePath, data, mode, o = {}) {
      return withSftp(host, `write ${remotePath}`, o, (sftp, cb) => sftp.writeFile(remotePath, data, { mode }, cb))
    },
    upload(host, localPath, remotePath, mode, o = {}) {
      return withSftp(host, `upload to ${remotePath}`, o, (sftp, cb) =>
        sftp.fastPut(localPath, remotePath, { mode }, (err) => cb(err)),
      )
    },
    drop(name) {
      const c = conns.get(name)
      conns.delete(name)
      c?.then((x) => x.end()).catch(() => {})
    },
    async close() {
      closed = true
      const all = [...conns.values()]
      conns.clear()
      await Promise.all(all.map((pc) => pc.then((c) => new Promise<void>((r) => {
        c.once('close', () => r())
        c.end()
        setTimeout(r, 2000).unref()
      })).catch(() => {})))
    },
  }
}

function keyType(blob: Buffer): string {
  if (blob.length < 4) return 'unknown'
  const len = blob.readUInt32BE(0)
  return blob.subarray(4, 4 + Math.min(len, 64)).toString('latin1')
}
