import { connect, createServer, type Server } from 'node:net'
import { afterEach, describe, expect, test } from 'vitest'
import { startBalancer, type Balancer } from './startBalancer.js'

const closers: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c()
})

/** A TCP server that answers every connection with its name and closes. */
async function backend(name: string): Promise<{ port: number; server: Server }> {
  const server = createServer((s) => s.end(`${name}\n`))
  await new Promise<void>((r) => server.listen({ host: '127.0.0.1', port: 0 }, () => r()))
  closers.push(() => new Promise((r) => server.close(() => r())))
  return { port: (server.address() as { port: number }).port, server }
}

/** A port nothing listens on (bound, then released). */
async function deadPort(): Promise<number> {
  const s = createServer()
  await new Promise<void>((r) => s.listen({ host: '127.0.0.1', port: 0 }, () => r()))
  const port = (s.address() as { port: number }).port
  await new Promise((r) => s.close(r))
  return port
}

async function balancer(...a: Parameters<typeof startBalancer>): Promise<Balancer> {
  const b = await startBalancer(...a)
  closers.push(() => b.close())
  return b
}

/** Connect, send `payload`, read until the peer closes: the text, or `closed` when nothing came back. */
function ask(port: number, payload = ''): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port })
    let got = ''
    s.on('data', (d) => (got += d.toString()))
    s.on('error', reject)
    s.on('close', () => resolve(got === '' ? 'closed' : got.trim()))
    if (payload) s.write(payload)
  })
}

describe('startBalancer', () => {
  test('default: round robin over the backends', async () => {
    const a = await backend('a')
    const b = await backend('b')
    const lb = await balancer({ host: '127.0.0.1', port: 0, backends: [{ host: '127.0.0.1', port: a.port }, { host: '127.0.0.1', port: b.port }] })
    const got = []
    for (let i = 0; i < 4; i++) got.push(await ask(lb.port))
    expect(got.sort()).toEqual(['a', 'a', 'b', 'b'])
    expect(lb.stats()).toMatchObject({ accepted: 4, forwarded: 4, rejected: 0 })
  })

  test('behavior: bytes flow both ways (an echo backend)', async () => {
    const echo = createServer((s) => s.pipe(s))
    await new Promise<void>((r) => echo.listen({ host: '127.0.0.1', port: 0 }, () => r()))
    closers.push(() => new Promise((r) => echo.close(() => r())))
    const lb = await balancer({ host: '127.0.0.1', port: 0, backends: [{ host: '127.0.0.1', port: (echo.address() as { port: number }).port }] })
    const text = await new Promise<string>((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port: lb.port })
      let got = ''
      s.on('error', reject)
      s.on('data', (d) => {
        got += d.toString()
        if (got.length >= 100_000) s.end()
      })
      s.on('close', () => resolve(got))
      // written at once, before the balancer has connected upstream: nothing may be lost
      s.write('x'.repeat(100_000))
    })
    expect(text).toBe('x'.repeat(100_000))
  })

  test('behavior: a refusing backend fails over to the next one', async () => {
    const a = await backend('a')
    const dead = await deadPort()
    const lb = await balancer({ host: '127.0.0.1', port: 0, backends: [{ host: '127.0.0.1', port: dead }, { host: '127.0.0.1', port: a.port }] })
    const got = []
    for (let i = 0; i < 4; i++) got.push(await ask(lb.port))
    expect(got).toEqual(['a', 'a', 'a', 'a'])
    expect(lb.stats().failedOver).toBeGreaterThanOrEqual(1)
    expect(lb.stats().rejected).toBe(0)
  })

  test('behavior: no backends closes the connection at once; backends set later serve', async () => {
    const lb = await balancer({ host: '127.0.0.1', port: 0 })
    const t0 = Date.now()
    expect(await ask(lb.port, 'GET / HTTP/1.0\r\n\r\n')).toBe('closed')
    expect(Date.now() - t0).toBeLessThan(2_000)
    expect(lb.stats().rejected).toBe(1)
    const a = await backend('a')
    lb.setBackends([{ host: '127.0.0.1', port: a.port }])
    expect(await ask(lb.port)).toBe('a')
    lb.setBackends([])
    expect(await ask(lb.port)).toBe('closed')
  })

  test('behavior: every backend down closes the connection once the hold is over', async () => {
    const lb = await balancer({ host: '127.0.0.1', port: 0, backends: [{ host: '127.0.0.1', port: await deadPort() }, { host: '127.0.0.1', port: await deadPort() }] })
    expect(await ask(lb.port)).toBe('closed')
    expect(lb.stats()).toMatchObject({ rejected: 1, forwarded: 0 })
  })

  test('behavior: a client arriving while its only replica restarts is held and served once it listens again', async () => {
    const port = await deadPort()
    const lb = await balancer({ host: '127.0.0.1', port: 0, backends: [{ host: '127.0.0.1', port }], holdMs: 5_000, retryEveryMs: 50 })
    const answer = ask(lb.port)
    // the replica comes back a moment after the client arrived, on the same port
    await new Promise((r) => setTimeout(r, 300))
    const back = createServer((s) => s.end('back\n'))
    await new Promise<void>((r) => back.listen({ host: '127.0.0.1', port }, () => r()))
    closers.push(() => new Promise((r) => back.close(() => r())))
    expect(await answer).toBe('back')
    expect(lb.stats()).toMatchObject({ accepted: 1, forwarded: 1, rejected: 0 })
  })

  test('behavior: replacing the backends moves new connections', async () => {
    const a = await backend('a')
    const b = await backend('b')
    const lb = await balancer({ host: '127.0.0.1', port: 0, backends: [{ host: '127.0.0.1', port: a.port }] })
    expect(await ask(lb.port)).toBe('a')
    lb.setBackends([{ host: '127.0.0.1', port: b.port }])
    expect(lb.backends()).toEqual([{ host: '127.0.0.1', port: b.port }])
    expect([await ask(lb.port), await ask(lb.port)]).toEqual(['b', 'b'])
  })

  test('error: a port already bound', async () => {
    const a = await backend('a')
    await expect(startBalancer({ host: '127.0.0.1', port: a.port })).rejects.toMatchObject({ code: 'ENDPOINT_PORT_UNAVAILABLE', retryable: true })
  })

  test('behavior: close stops listening and drops open connections', async () => {
    const hold = createServer(() => undefined)
    await new Promise<void>((r) => hold.listen({ host: '127.0.0.1', port: 0 }, () => r()))
    closers.push(() => new Promise((r) => { hold.close(() => r()); }))
    const lb = await startBalancer({ host: '127.0.0.1', port: 0, backends: [{ host: '127.0.0.1', port: (hold.address() as { port: number }).port }] })
    const pending = ask(lb.port)
    await new Promise((r) => setTimeout(r, 100))
    await lb.close()
    expect(await pending).toBe('closed')
    await expect(ask(lb.port)).rejects.toMatchObject({ code: 'ECONNREFUSED' })
  })
})
