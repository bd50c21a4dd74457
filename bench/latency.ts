/**
 * Time from a customer's ServiceInitiated transaction (its receipt) to the service answering HTTP, on a real anvil
 * chain with the daemon, for the local target and (when sshd is installed) an SSH host on 127.0.0.1.
 * Run: `npm run bench -- latency` or `node bin/run-ts.mjs bench/latency.ts [runs]`.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { startSshd, type Sshd } from '../test/helpers/sshd.js'
import { startInProcess, startStack, waitFor, type Stack } from '../test/helpers/stack.js'

const runs = Number(process.argv[2] ?? 5)

async function measure(label: string, stack: Stack, n: number, rewrite = (u: string) => u): Promise<void> {
  const d = await startInProcess(stack)
  const times: number[] = []
  try {
    const blueprintId = await stack.registerDemo()
    for (let i = 0; i < n; i++) {
      await stack.chain.customer.mint(3_600_000n)
      const t0 = performance.now()
      const { serviceId } = await stack.chain.customer.requestService({ blueprintId, operator: stack.chain.operatorAddress, tier: 0, ttlSeconds: 3600n, deposit: 3_600_000n })
      await waitFor('answers HTTP', async () => {
        const s = d.daemon.store.read().services[serviceId.toString()]
        if (s?.state !== 'active' || !s.endpoints[0]) return false
        return (await fetch(rewrite(s.endpoints[0]), { signal: AbortSignal.timeout(1000) })).ok
      }, 120_000, 25)
      times.push(performance.now() - t0)
      await stack.chain.customer.terminate(serviceId)
    }
  } finally {
    await d.stop()
  }
  times.sort((a, b) => a - b)
  const p = (q: number) => times[Math.min(times.length - 1, Math.floor(q * times.length))]!.toFixed(0)
  console.log(`${label.padEnd(6)} ServiceInitiated → HTTP answer: p50 ${p(0.5)} ms, min ${times[0]!.toFixed(0)} ms, max ${times[times.length - 1]!.toFixed(0)} ms (${n} runs; 1 confirmation, 1 s blocks)`)
}

const local = await startStack()
try {
  await measure('local', local, runs)
} finally {
  await local.stop()
}

if (existsSync('/usr/sbin/sshd')) {
  let sshd: Sshd | undefined
  let stack: Stack | undefined
  try {
    sshd = await startSshd()
    stack = await startStack({
      extra: {
        providers: {
          local: { enabled: false },
          ssh: { hosts: [{ name: 'h1', address: sshd.address, port: sshd.port, user: sshd.user, private_key: 'file:keys/h1', host_key: sshd.hostKey, vcpu: 8, memory_gib: 8, storage_gib: 20, hourly_usd: '0.02', remote_root: '/tmp/bpo-bench-ssh' }] },
        },
      },
    })
    mkdirSync(join(stack.dataDir, 'keys'), { recursive: true })
    writeFileSync(join(stack.dataDir, 'keys', 'h1'), sshd.privateKey, { mode: 0o600 })
    await measure('ssh', stack, runs, (u) => u.replace('0.0.0.0', '127.0.0.1'))
  } finally {
    await stack?.stop()
    await sshd?.stop()
  }
} else {
  console.log('ssh    skipped: /usr/sbin/sshd is not installed (apt-get install -y openssh-server)')
}
