/**
 * The spine's lifecycle against the SSH target: the daemon serves the blueprint on a real OpenSSH server (key-only,
 * pinned host key) instead of locally — active → expiry → zero → top-up → back → TTL → destroyed, nothing left on
 * the host.
 */
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { startSshd, type Sshd } from '../helpers/sshd.js'
import { processesOf, startInProcess, startStack, waitFor, type Stack } from '../helpers/stack.js'
import { sshdMissing } from '../helpers/sshd.js'

const noSshd = sshdMissing()
if (noSshd) test.skip(`real sshd suites: ${noSshd}`, () => undefined)

const RATE = 1000n

describe.skipIf(!!noSshd)('e2e: lifecycle on an SSH host', () => {
  let stack: Stack
  let sshd: Sshd
  let d: Awaited<ReturnType<typeof startInProcess>>
  let remoteRoot: string
  beforeAll(async () => {
    sshd = await startSshd()
    stack = await startStack({
      extra: {
        providers: {
          local: { enabled: false },
          ssh: {
            hosts: [
              {
                name: 'rack-1',
                address: sshd.address,
                port: sshd.port,
                user: sshd.user,
                private_key: 'file:keys/rack-1',
                host_key: sshd.hostKey,
                vcpu: 4,
                memory_gib: 4,
                storage_gib: 20,
                hourly_usd: '0.02',
                region: 'eu-home',
                remote_root: '/tmp/bpo-e2e-ssh-root',
              },
            ],
          },
        },
      },
    })
    remoteRoot = `/tmp/bpo-e2e-ssh-root-${stack.operatorId}`
    ;((stack.doc.providers as { ssh: { hosts: Array<{ remote_root: string }> } }).ssh.hosts[0]!).remote_root = remoteRoot
    mkdirSync(join(stack.dataDir, 'keys'), { recursive: true })
    writeFileSync(join(stack.dataDir, 'keys', 'rack-1'), sshd.privateKey, { mode: 0o600 })
    d = await startInProcess(stack) // the key is read from <data dir>/keys/rack-1 by its file: reference
  })
  afterAll(async () => {
    await d?.stop()
    await stack?.stop()
    await sshd?.stop()
  })

  test('default: active → expiry → zero → top-up → back → TTL → destroyed, nothing left on the host', async () => {
    const { chain } = stack
    const blueprintId = await stack.registerDemo()
    await chain.customer.mint(10_000_000n)
    const customer0 = await chain.customer.balanceOf()
    const D = 60n * RATE
    const t0 = performance.now()
    const { serviceId } = await chain.customer.requestService({ blueprintId, operator: chain.operatorAddress, tier: 0, ttlSeconds: 600n, deposit: D })
    const dep = `bp-${chain.chainId}-${serviceId}`
    const active = await waitFor('active', () => stack.service(serviceId)?.state === 'active' && stack.service(serviceId), 60_000)
    const ms = Math.round(performance.now() - t0)
    if (process.env.BPO_TEST_TRACE) console.log(`ssh: ServiceInitiated → active in ${ms} ms`)
    expect(active.quote!.target).toBe('ssh:rack-1')
    const ep = active.endpoints[0]!
    expect(((await (await fetch(ep.replace('0.0.0.0', '127.0.0.1'))).json()) as { deployment: string }).deployment).toBe(dep)
    expect(processesOf(dep, stack.operatorId)).toHaveLength(1)

    await stack.travel(120n)
    await waitFor('scaled-to-zero', () => stack.service(serviceId)?.state === 'scaled-to-zero', 30_000)
    await waitFor('no replica on the host', () => processesOf(dep, stack.operatorId).length === 0)

    const T = 1000n * RATE
    await chain.customer.topUp(serviceId, T)
    const back = await waitFor('active again', () => {
      const s = stack.service(serviceId)
      return s?.state === 'active' && s.history.some((h) => h.cause === 'top-up') && s
    }, 60_000)
    const info = (await (await fetch(back.endpoints[0]!.replace('0.0.0.0', '127.0.0.1'))).json()) as { starts: number }
    expect(info.starts).toBe(2) // data kept on the host across scale-to-zero

    await stack.travel(700n)
    await waitFor('closed', () => stack.service(serviceId)?.state === 'closed', 60_000)
    expect(processesOf(dep, stack.operatorId)).toHaveLength(0)
    expect(await d.daemon.targets.byName('ssh:rack-1')!.provisioner.listOwned()).toEqual([])
    const left = (() => {
      try {
        return readdirSync(remoteRoot, { recursive: true }).filter((f) => String(f).includes(dep))
      } catch {
        return []
      }
    })()
    expect(left).toEqual([])
    const [refund] = await stack.refunds(serviceId)
    expect(refund!.reason).toBe('TTL_REACHED')
    expect(await chain.customer.balanceOf()).toBe(customer0 - D - T + refund!.amount)
  })
})
