/**
 * Start-up through `blueprint-operator run` (a real child process): with the RPC down the daemon starts, answers
 * /readyz 503 and waits (no exit) until the node is back; a busy `[http] listen` port exits 75 naming `http.listen`;
 * `--help` says both, with the exit codes.
 */
import { spawnSync } from 'node:child_process'
import { createServer, type Server } from 'node:net'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { startRelay, type RpcRelay } from '../chain/proxy.js'
import { binPath, startChild, startStack, waitFor, type Stack } from '../helpers/stack.js'

describe('e2e: start-up', () => {
  let stack: Stack
  let relay: RpcRelay
  let child: ReturnType<typeof startChild> | undefined
  let busy: Server | undefined
  beforeAll(async () => {
    stack = await startStack()
    const url = new URL(stack.chain.rpcUrl)
    relay = await startRelay({ host: url.hostname, port: Number(url.port) })
    const chain = stack.doc.chain as Record<string, unknown>
    chain.rpc_url = relay.url
    chain.request_timeout_ms = 1000
    stack.doc.log = { level: 'debug' }
  })
  afterAll(async () => {
    child?.child.kill('SIGKILL')
    busy?.close()
    await relay?.close()
    await stack?.stop()
  })

  test('behavior: RPC down at start-up — the daemon runs, /readyz is 503, it waits; the node returns — ready, and it serves', { timeout: 120_000 }, async () => {
    await relay.down()
    stack.doc.http = { enabled: true, listen: '127.0.0.1:0' }
    child = startChild(stack)
    const c = child
    const http = await waitFor('http listening', () => /"url":"(http:\/\/127\.0\.0\.1:\d+)"[^\n]*"msg":"http listening"/.exec(c.output())?.[1], 60_000)
    let exited: number | null | undefined
    void c.exited.then((code) => (exited = code))
    // several request timeouts later it still runs, alive but not ready
    await new Promise((r) => setTimeout(r, 4000))
    expect(exited).toBeUndefined()
    expect((await fetch(`${http}/healthz`)).status).toBe(200)
    const notReady = await fetch(`${http}/readyz`)
    expect(notReady.status).toBe(503)
    expect(JSON.stringify(await notReady.json())).toMatch(/the chain has not been read yet/)
    expect(c.output()).toMatch(/RPC_UNAVAILABLE|RPC call .* failed/)
    await relay.up()
    await waitFor('ready', async () => (await fetch(`${http}/readyz`)).status === 200, 30_000)
    const blueprintId = await stack.registerDemo()
    const { serviceId } = await stack.chain.requestService({ blueprintId, deposit: 60_000n, ttlSeconds: 3600n })
    await waitFor('active', () => stack.service(serviceId)?.state === 'active', 60_000)
    c.child.kill('SIGTERM')
    expect(await c.exited).toBe(0)
    child = undefined
  })

  test('error: a busy [http] listen port exits 75 (try again later), naming http.listen and the address', { timeout: 120_000 }, async () => {
    busy = createServer()
    await new Promise<void>((r) => busy!.listen(0, '127.0.0.1', () => r()))
    const port = (busy.address() as { port: number }).port
    stack.doc.http = { enabled: true, listen: `127.0.0.1:${port}` }
    const c = startChild(stack)
    expect(await c.exited).toBe(75)
    expect(c.output()).toContain(`http.listen: cannot listen on 127.0.0.1:${port} (the address is already in use)`)
    expect(c.output()).toMatch(/HTTP_LISTEN_FAILED/)
  })

  test('default: --help says how start-up with the RPC down behaves, and the exit codes', () => {
    const r = spawnSync(process.execPath, [binPath, '--help'], { encoding: 'utf8', timeout: 60_000 })
    expect(r.status).toBe(0)
    expect(r.stdout).toMatch(/An unreachable RPC at start-up is waited for, not an error/)
    expect(r.stdout).toMatch(/\/readyz answers 503 until the chain has been read once/)
    expect(r.stdout).toMatch(/75 try again later \(a retryable start-up failure, e\.g\. http\.listen in use\)/)
    expect(r.stdout).toMatch(/1 will not succeed on retry/)
  })
})
