/**
 * Start a local anvil node from the npm package `@foundry-rs/anvil` (its platform package ships the binary) on
 * 127.0.0.1 with a port chosen by the OS, and wait until it answers JSON-RPC.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { bytesToHex, type Address, type Hex } from 'viem'
import { mnemonicToAccount } from 'viem/accounts'
import { BaseError } from '../../core/errors.js'

/** The mnemonic anvil uses by default; its accounts are public knowledge and only fit for local chains. */
export const anvilMnemonic = 'test test test test test test test test test test test junk'

export type StartAnvilParameters = {
  /** Seconds between blocks; default: mine one block per transaction. */
  blockTime?: number
  /** Default 31337. */
  chainId?: number
  /** Funded accounts to derive. Default 10. */
  accounts?: number
  /** Path of the anvil binary. Default: `ANVIL_BIN`, else the one shipped in `@foundry-rs/anvil-<os>-<arch>`. */
  binary?: string
  /** Extra command-line arguments. */
  args?: string[]
  /** Startup timeout in ms. Default 30_000. */
  timeoutMs?: number
  signal?: AbortSignal
}

export type Anvil = {
  rpcUrl: string
  chainId: number
  port: number
  accounts: { address: Address; privateKey: Hex }[]
  /** SIGTERM, then SIGKILL after 5 s; resolves when the process is gone. */
  stop(): Promise<void>
}

export class AnvilStartError extends BaseError {
  override name = 'AnvilStartError'
  constructor(message: string, details: string[] = [], cause?: unknown) {
    super(message, { code: 'ANVIL_START_FAILED', retryable: false, details, cause })
  }
}

/** Where the anvil binary lives: `ANVIL_BIN`, else inside the npm platform package. */
export function anvilBinary(): string {
  const fromEnv = process.env.ANVIL_BIN
  if (fromEnv) return fromEnv
  const os = process.platform === 'win32' ? 'win32' : process.platform
  const arch = process.arch === 'x64' ? 'amd64' : process.arch
  const pkg = `@foundry-rs/anvil-${os}-${arch}`
  try {
    const path = createRequire(import.meta.url).resolve(`${pkg}/bin/anvil${os === 'win32' ? '.exe' : ''}`)
    if (existsSync(path)) return path
  } catch (err) {
    throw new AnvilStartError(`anvil binary not found: npm package ${pkg} is not installed`, ['run npm install'], err)
  }
  throw new AnvilStartError(`anvil binary missing from ${pkg}`)
}

const derived = new Map<number, { address: Address; privateKey: Hex }>()
function account(index: number) {
  let a = derived.get(index)
  if (!a) {
    const acc = mnemonicToAccount(anvilMnemonic, { addressIndex: index })
    a = { address: acc.address, privateKey: bytesToHex(acc.getHdKey().privateKey!) }
    derived.set(index, a)
  }
  return a
}

/** Spawn anvil and resolve once it answers `eth_chainId`. */
export async function startAnvil(o: StartAnvilParameters = {}): Promise<Anvil> {
  const chainId = o.chainId ?? 31337
  const count = o.accounts ?? 10
  const args = ['--host', '127.0.0.1', '--port', '0', '--chain-id', String(chainId), '--accounts', String(count), '--mnemonic', anvilMnemonic]
  if (o.blockTime !== undefined) args.push('--block-time', String(o.blockTime))
  args.push(...(o.args ?? []))
  const child = spawn(o.binary ?? anvilBinary(), args, { stdio: ['ignore', 'pipe', 'pipe'] })
  // never leave a node behind when this process exits without calling stop()
  const killOnExit = () => child.kill('SIGKILL')
  process.once('exit', killOnExit)
  child.once('error', () => process.removeListener('exit', killOnExit))
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      process.removeListener('exit', killOnExit)
      resolve()
    }),
  )
  let output = ''
  const stop = () => stopChild(child, exited)
  try {
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new AnvilStartError(`anvil did not start within ${o.timeoutMs ?? 30_000} ms`, tail(output))), o.timeoutMs ?? 30_000)
      const onAbort = () => reject(new AnvilStartError('anvil start aborted'))
      o.signal?.addEventListener('abort', onAbort, { once: true })
      const done = () => {
        clearTimeout(timer)
        o.signal?.removeEventListener('abort', onAbort)
      }
      const onData = (chunk: Buffer) => {
        output += chunk.toString()
        const m = /Listening on 127\.0\.0\.1:(\d+)/.exec(output)
        if (m) {
          done()
          resolve(Number(m[1]))
        }
      }
      child.stdout!.on('data', onData)
      child.stderr!.on('data', onData)
      child.once('error', (err) => {
        done()
        reject(new AnvilStartError('anvil could not be spawned', [], err))
      })
      child.once('exit', (code, signal) => {
        done()
        reject(new AnvilStartError(`anvil exited during start-up (code ${code}, signal ${signal})`, tail(output)))
      })
    })
    // keep draining the pipes so anvil never blocks on a full buffer
    child.stdout!.removeAllListeners('data').resume()
    child.stderr!.removeAllListeners('data').resume()
    const rpcUrl = `http://127.0.0.1:${port}`
    await waitForRpc(rpcUrl, chainId, o.timeoutMs ?? 30_000)
    return { rpcUrl, chainId, port, accounts: Array.from({ length: count }, (_, i) => account(i)), stop }
  } catch (err) {
    await stop()
    throw err
  }
}

const tail = (s: string) => s.trim().split('\n').slice(-5)

async function waitForRpc(rpcUrl: string, chainId: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try {
      const res = await fetch(rpcUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_chainId', params: [] }),
        signal: AbortSignal.timeout(2_000),
      })
      const body = (await res.json()) as { result?: string }
      if (body.result && Number(body.result) === chainId) return
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new AnvilStartError(`anvil at ${rpcUrl} did not answer within ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

async function stopChild(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000)
  await exited
  clearTimeout(timer)
}
