/**
 * Canary: the daemon runs as a child process (`blueprint-operator run`, debug logs) with known secret values in every
 * secret slot — the operator's private key (env:), an RPC URL carrying a key in its path and its query (file:), a
 * TFChain URL with a key (env:), an SSH host's private key (file:) — through a service's whole life and an RPC outage
 * (whose errors carry the URL). None of the values may appear in its logs, /api/*, /metrics, the dashboard or any file
 * under its data dir.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { startChild, startStack, waitFor, type Stack } from '../helpers/stack.js'

const CANARY = {
  pathKey: 'c4n4ryP4thK3y0123456789abcdefXYZ',
  queryKey: 'canaryQueryValue42xyz',
  tfKey: 'tfC4n4ryK3y0123456789abcdefgh',
  sshKey: 'SSH-CANARY-PRIVATE-KEY-MATERIAL-7f3a9c',
  adminToken: 'adminCanaryToken9f8e7d6c5b4a',
  hookSecret: 'hookCanarySecret1a2b3c4d5e6f',
  hookKey: 'h00kC4n4ryP4thK3y0123456789',
}

/**
 * A hosted-node look-alike in front of anvil: answers only `/v3/<pathKey>?apikey=<queryKey>` (401 otherwise), and
 * answers 503 while "down" (viem's error text then carries the full URL).
 */
async function startKeyedNode(anvilUrl: string): Promise<{ url: string; down: boolean; hits: number; close(): Promise<void> }> {
  const state = { down: false, hits: 0 }
  const server: Server = createServer(async (req, res) => {
    const chunks: Buffer[] = []
    for await (const c of req) chunks.push(c as Buffer)
    const u = new URL(req.url ?? '/', 'http://x')
    if (u.pathname !== `/v3/${CANARY.pathKey}` || u.searchParams.get('apikey') !== CANARY.queryKey) {
      res.writeHead(401).end('unauthorized')
      return
    }
    state.hits++
    if (state.down) {
      res.writeHead(503, { 'content-type': 'text/plain' }).end('service unavailable')
      return
    }
    const up = await fetch(anvilUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: Buffer.concat(chunks) }).catch(() => undefined)
    if (!up) {
      res.writeHead(502).end()
      return
    }
    res.writeHead(up.status, { 'content-type': 'application/json' }).end(Buffer.from(await up.arrayBuffer()))
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  const port = (server.address() as { port: number }).port
  return Object.assign(state, {
    url: `http://127.0.0.1:${port}/v3/${CANARY.pathKey}?apikey=${CANARY.queryKey}`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  })
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .map((f) => join(dir, f))
    .filter((f) => {
      try {
        return statSync(f).isFile()
      } catch {
        return false
      }
    })
}

describe('e2e: secrets canary', () => {
  let stack: Stack
  let node: Awaited<ReturnType<typeof startKeyedNode>>
  let child: ReturnType<typeof startChild> | undefined
  const secretsDir = mkdtempSync(join(tmpdir(), 'bpo-canary-secrets-'))
  // a webhook receiver whose URL carries its own key; what it receives is grepped too
  const hooks: string[] = []
  let hookServer: Server
  beforeAll(async () => {
    hookServer = createServer(async (req, res) => {
      const chunks: Buffer[] = []
      for await (const c of req) chunks.push(c as Buffer)
      hooks.push(`${req.url} ${JSON.stringify(req.headers)} ${Buffer.concat(chunks).toString()}`)
      res.writeHead(204).end()
    })
    await new Promise<void>((r) => hookServer.listen(0, '127.0.0.1', () => r()))
    const hookUrl = `http://127.0.0.1:${(hookServer.address() as { port: number }).port}/hook/${CANARY.hookKey}?token=${CANARY.queryKey}`
    writeFileSync(join(secretsDir, 'hook-url'), `${hookUrl}\n`, { mode: 0o600 })
    process.env.BPO_CANARY_ADMIN_TOKEN = CANARY.adminToken
    process.env.BPO_CANARY_HOOK_SECRET = CANARY.hookSecret
    stack = await startStack({ loopMs: 300 })
    node = await startKeyedNode(stack.chain.rpcUrl)
    writeFileSync(join(secretsDir, 'rpc-url'), `${node.url}\n`, { mode: 0o600 })
    writeFileSync(join(secretsDir, 'ssh-key'), `${CANARY.sshKey}\n`, { mode: 0o600 })
    process.env.BPO_CANARY_TFCHAIN_URL = `wss://127.0.0.1:1/key/${CANARY.tfKey}?token=${CANARY.queryKey}`
    const chain = stack.doc.chain as Record<string, unknown>
    chain.rpc_url = `file:${join(secretsDir, 'rpc-url')}`
    chain.request_timeout_ms = 2000
    stack.doc.http = { enabled: true, listen: '127.0.0.1:0', admin_token: 'env:BPO_CANARY_ADMIN_TOKEN' }
    stack.doc.notifications = { webhooks: [{ url: `file:${join(secretsDir, 'hook-url')}`, secret: 'env:BPO_CANARY_HOOK_SECRET' }] }
    stack.doc.log = { level: 'debug' }
    stack.doc.pricing = { tfchain_url: 'env:BPO_CANARY_TFCHAIN_URL' }
    const providers = stack.doc.providers as Record<string, unknown>
    // a host that is never reached (nothing listens on port 1) and costs more than the local target
    providers.ssh = {
      hosts: [
        {
          name: 'canary',
          address: '127.0.0.1',
          port: 1,
          user: 'root',
          private_key: `file:${join(secretsDir, 'ssh-key')}`,
          host_key: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl',
          vcpu: 1,
          memory_gib: 1,
          storage_gib: 1,
          hourly_usd: '9',
        },
      ],
    }
  })
  afterAll(async () => {
    child?.child.kill('SIGKILL')
    delete process.env.BPO_CANARY_TFCHAIN_URL
    delete process.env.BPO_CANARY_ADMIN_TOKEN
    delete process.env.BPO_CANARY_HOOK_SECRET
    await new Promise<void>((r) => hookServer?.close(() => r()))
    await node?.close()
    await stack?.stop()
    rmSync(secretsDir, { recursive: true, force: true })
  })

  test('behavior: no secret value reaches the logs, the API, the metrics, the dashboard or the state', { timeout: 180_000 }, async () => {
    const { chain } = stack
    const blueprintId = await stack.registerDemo()
    child = startChild(stack)
    const httpUrl = await waitFor('http listening', () => /"url":"(http:\/\/127\.0\.0\.1:\d+)"[^\n]*"msg":"http listening"/.exec(child!.output())?.[1], 60_000).catch((err: Error) => {
      throw new Error(`${err.message}\n${child!.output().slice(-4000)}`)
    })
    await chain.customer.mint(10_000_000n)
    const { serviceId } = await chain.customer.requestService({ blueprintId, operator: chain.operatorAddress, tier: 0, ttlSeconds: 3600n, deposit: 600_000n })
    await waitFor('active', () => stack.service(serviceId)?.state === 'active', 60_000)

    // an outage: every RPC error (viem's text carries the URL) is logged
    const before = node.hits
    node.down = true
    await waitFor('failed RPC calls while down', () => node.hits > before + 5, 30_000)
    await new Promise((r) => setTimeout(r, 1500))
    node.down = false
    await chain.customer.topUp(serviceId, 100_000n)
    await chain.customer.terminate(serviceId)
    await waitFor('closed', () => stack.service(serviceId)?.state === 'closed', 60_000)

    const answers: Record<string, string> = {}
    for (const path of ['/api/services', `/api/services/${serviceId}`, '/api/status', '/metrics', '/', '/readyz']) {
      answers[path] = await (await fetch(`${httpUrl}${path}`)).text()
    }
    expect(answers['/']).toContain('<h1>blueprint-operator</h1>')
    expect(answers['/metrics']).toMatch(/bpo_service_transitions_total/)

    child.child.kill('SIGTERM')
    expect(await child.exited).toBe(0)
    const logs = child.output()
    child = undefined

    const key = stack.operatorKey.slice(2).toLowerCase()
    const canaries = { privateKey: key, ...CANARY }
    await waitFor('webhooks delivered', () => hooks.length >= 3, 30_000)
    // the receiver got them on its keyed URL (the secrets reached where they belong, and nowhere else)
    expect(hooks[0]).toContain(`/hook/${CANARY.hookKey}`)
    const places: Record<string, string> = { logs, ...answers, webhooks: hooks.map((h) => h.slice(h.indexOf(' '))).join('\n') }
    for (const f of filesUnder(stack.dataDir)) places[f] = readFileSync(f, 'latin1')
    const leaks: string[] = []
    for (const [where, text] of Object.entries(places)) {
      const low = text.toLowerCase()
      for (const [name, value] of Object.entries(canaries)) if (low.includes(value.toLowerCase())) leaks.push(`${name} in ${where}`)
    }
    expect(leaks).toEqual([])
    // the URL did go through the logs (redacted), and the outage was logged: the test looked where the secrets would be
    expect(logs).toContain(`/v3/***?apikey=***`)
    expect(logs).toMatch(/503|unavailable|RPC_UNAVAILABLE/i)
    expect(Object.keys(places).length).toBeGreaterThan(8)
  })
})
