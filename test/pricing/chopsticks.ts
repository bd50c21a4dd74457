/**
 * A real TFChain runtime (spec 61, from ../shared/fixtures/substrate) run offline by chopsticks, for the tfchain
 * price source's tests. Listens on 127.0.0.1 at a port the OS picks.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const fixtures = fileURLToPath(new URL('../../../shared/fixtures/substrate/', import.meta.url))
export const tfchainSpec61 = `${fixtures}tfchain-qanet-spec61.json`
/** polkadot.js types for spec 61 (its metadata v12 has no type info). */
export const tfchainSpec61Types: Record<string, unknown> = JSON.parse(readFileSync(`${fixtures}tfchain-qanet-spec61-types.json`, 'utf8'))

export type Chopsticks = {
  wsUrl: string
  /** JSON-RPC call over a fresh WebSocket (dev_setStorage, state_getStorage, ...). */
  rpc<T = unknown>(method: string, params: unknown[]): Promise<T>
  stop(): Promise<void>
}

/** Start chopsticks on the spec 61 genesis; resolves once its RPC server listens. */
export async function startTfchain(o: { readyTimeoutMs?: number } = {}): Promise<Chopsticks> {
  // the package's exports map hides its bin script from require.resolve
  const bin = fileURLToPath(new URL('../../node_modules/@acala-network/chopsticks/chopsticks.cjs', import.meta.url))
  const child: ChildProcess = spawn(process.execPath, [bin, '--genesis', tfchainSpec61, '--host', '127.0.0.1', '--port', '0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM')
      const t = setTimeout(() => child.kill('SIGKILL'), 5_000)
      await exited
      clearTimeout(t)
    }
  }
  try {
    const wsUrl = await new Promise<string>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`chopsticks not ready after ${o.readyTimeoutMs ?? 60_000} ms:\n${output.slice(-2000)}`)), o.readyTimeoutMs ?? 60_000)
      const onData = (d: Buffer) => {
        output += d.toString()
        const m = /RPC listening on \S+ and (ws:\/\/127\.0\.0\.1:\d+)/.exec(output)
        if (m) {
          clearTimeout(t)
          resolve(m[1]!)
        }
      }
      child.stdout!.on('data', onData)
      child.stderr!.on('data', onData)
      child.once('exit', (code) => {
        clearTimeout(t)
        reject(new Error(`chopsticks exited with ${code}:\n${output.slice(-2000)}`))
      })
    })
    const { WsProvider } = await import('@polkadot/api')
    return {
      wsUrl,
      async rpc<T>(method: string, params: unknown[]) {
        const provider = new WsProvider(wsUrl, false)
        try {
          await provider.connect()
          await provider.isReady
          return await provider.send<T>(method, params)
        } finally {
          await provider.disconnect()
        }
      },
      stop,
    }
  } catch (err) {
    await stop()
    throw err
  }
}
