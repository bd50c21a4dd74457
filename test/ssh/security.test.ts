/**
 * The SSH target against a real sshd: pinned host keys, key-only auth, and hostile values that must reach the host
 * as data, never as shell code.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Client } from 'ssh2'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { isRetryable } from '../../core/errors.js'
import { HostKeyMismatchError, SshAuthError } from '../../provisioners/ssh/index.js'
import { HOST_SCRIPT, HOST_SCRIPT_VERSION } from '../../provisioners/ssh/hostScript.js'
import { demoServicePath } from '../helpers/demo-service.js'
import { generateKeyPair, freePort } from '../helpers/sshd.js'
import { destroyAll, startSshLab, type SshLab } from './harness.js'
import { sshdMissing } from '../helpers/sshd.js'

const noSshd = sshdMissing()
if (noSshd) test.skip(`real sshd suites: ${noSshd}`, () => undefined)

async function rejection(p: Promise<unknown>): Promise<Error & { code?: string; reason?: string; retryable?: boolean }> {
  try {
    await p
  } catch (err) {
    return err as Error
  }
  throw new Error('expected a rejection')
}

let lab: SshLab
beforeAll(async () => {
  lab = await startSshLab({ hosts: 1 })
})
afterAll(async () => {
  await lab?.stop()
})

describe.skipIf(!!noSshd)('ssh security: host keys and authentication', () => {
  test('error: a host presenting another key than the pinned one is refused, not retried, and nothing runs', async () => {
    const other = await generateKeyPair()
    const prov = lab.provisioner({ hosts: [{ ...lab.hosts[0]!, hostKey: other.publicKey, remoteRoot: join(lab.dir, 'mitm-root') }] })
    const err = await rejection(prov.provision(lab.request('sec-mitm')))
    expect(err).toBeInstanceOf(HostKeyMismatchError)
    expect(err.code).toBe('SSH_HOST_KEY_MISMATCH')
    expect(isRetryable(err)).toBe(false)
    expect(err.message).not.toContain('PRIVATE KEY')
    expect(existsSync(join(lab.dir, 'mitm-root'))).toBe(false)
    const st = await rejection(prov.status('sec-mitm'))
    expect(st).toBeInstanceOf(HostKeyMismatchError)
  })

  test('error: a pinned key of a type the host does not offer is a mismatch too', async () => {
    const ecdsa = 'ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBFd5NjYm1cMkE4D3VnB1fYF3tQKhjrqT3r7dX2Vq3qW7n1vRk3Y0vXz9YbX0ZP5ZqgYQ5Z0Y8QW3sVQm2oQ1h5c='
    const prov = lab.provisioner({ hosts: [{ ...lab.hosts[0]!, hostKey: ecdsa }] })
    const err = await rejection(prov.status('sec-type'))
    expect(err).toBeInstanceOf(HostKeyMismatchError)
    expect(isRetryable(err)).toBe(false)
  })

  test('error: a key the host does not authorize is refused, not retried, and never logged', async () => {
    const stranger = await generateKeyPair()
    const prov = lab.provisioner({ hosts: [{ ...lab.hosts[0]!, privateKey: stranger.privateKey }] })
    const err = await rejection(prov.status('sec-key'))
    expect(err).toBeInstanceOf(SshAuthError)
    expect(err.code).toBe('SSH_AUTH_FAILED')
    expect(isRetryable(err)).toBe(false)
    expect(JSON.stringify(err) + err.message).not.toContain(stranger.privateKey.split('\n')[1]!)
  })

  test('error: the host refuses a login without a key (no password, no keyboard-interactive)', async () => {
    const s = lab.sshds[0]!
    const level = await new Promise<string>((resolve) => {
      const c = new Client()
      c.on('ready', () => {
        c.end()
        resolve('logged in')
      })
      c.on('error', (e: Error & { level?: string }) => resolve(e.level ?? e.message))
      c.connect({ host: s.address, port: s.port, username: s.user, password: 'root', tryKeyboard: true, readyTimeout: 15_000, hostVerifier: () => true })
    })
    expect(level).toBe('client-authentication')
  })

  test('error: a closed port is a retryable TargetUnreachableError', async () => {
    const prov = lab.provisioner({ hosts: [{ ...lab.hosts[0]!, port: await freePort() }], connectTimeoutMs: 5_000 })
    const err = await rejection(prov.provision(lab.request('sec-closed')))
    expect(err.code).toBe('TARGET_UNREACHABLE')
    expect(isRetryable(err)).toBe(true)
  })
})

describe.skipIf(!!noSshd)('ssh security: hostile values', () => {
  const marker = () => join(lab.dir, 'PWNED')
  const hostileValues = () => ({
    A_SUBST: `$(touch ${marker()})`,
    B_BACKTICK: `\`touch ${marker()}\``,
    C_SEMI: `; touch ${marker()}; rm -rf ${join(lab.dir, 'canary')}`,
    D_NEWLINE: `line one\ntouch ${marker()}\n`,
    E_QUOTES: `'"\\'\\"'; touch ${marker()}; echo '`,
    F_UNICODE: 'ünïcödé 🚀 \u202e gnp.exe',
    G_EXPAND: '$HOME ${PATH} $0 $$ * ~',
    H_REDIRECT: `> ${marker()} < /etc/passwd | tee ${marker()}`,
  })

  test('behavior: hostile env values reach the workload byte for byte and nothing is executed', async () => {
    mkdirSync(join(lab.dir, 'canary'), { recursive: true })
    const prov = lab.provisioner()
    const env = hostileValues()
    try {
      const st = await prov.provision(lab.request('sec-env', { env }))
      expect(st.replicasReady).toBe(1)
      expect(existsSync(marker())).toBe(false)
      expect(existsSync(join(lab.dir, 'canary'))).toBe(true)
      const replicaDir = join(lab.hosts[0]!.remoteRoot!, 'ops', 'op-test', 'sec-env', 'replicas', '0')
      const pid = readFileSync(join(replicaDir, 'child.pid'), 'utf8').trim()
      const seen = Object.fromEntries(
        readFileSync(`/proc/${pid}/environ`, 'utf8')
          .split('\0')
          .filter(Boolean)
          .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
      )
      for (const [k, v] of Object.entries(env)) expect({ k, v: seen[k] }).toEqual({ k, v })
      expect(seen.BPO_OWNER).toBe('op-test')
      expect(seen.DEPLOYMENT_ID).toBe('sec-env')
      // the workload starts from a clean environment: nothing of the SSH session leaks in
      expect(seen.SSH_CONNECTION).toBeUndefined()
    } finally {
      await destroyAll(prov)
    }
    expect(existsSync(marker())).toBe(false)
  })

  test('error: hostile ids, placements and env keys are refused before any connection', async () => {
    // a closed port: reaching the host would be TARGET_UNREACHABLE, refusing first is MALFORMED_REQUEST
    const prov = lab.provisioner({ hosts: [{ ...lab.hosts[0]!, port: await freePort() }], connectTimeoutMs: 3_000 })
    const bad = [
      lab.request(`x$(touch ${marker()})`),
      lab.request('x;rm -rf /'),
      lab.request('x\ny'),
      lab.request('ok-id', { placement: `h1$(touch ${marker()})` }),
    ]
    for (const req of bad) {
      const err = await rejection(prov.provision(req))
      expect({ id: req.deploymentId, code: err.code, reason: err.reason }).toEqual({ id: req.deploymentId, code: 'MALFORMED_REQUEST', reason: 'MALFORMED_REQUEST' })
    }
    for (const env of [{ 'A;touch x': '1' }, { PATH: '/evil' }, { LD_PRELOAD: '/tmp/evil.so' }, { BASH_ENV: `$(touch ${marker()})` }] as Record<string, string>[]) {
      const err = await rejection(prov.provision(lab.request('ok-id', { env })))
      expect({ env, code: err.code, reason: err.reason }).toEqual({ env, code: 'ENV_REFUSED', reason: 'MALFORMED_REQUEST' })
    }
    for (const call of [() => prov.status('a`b`'), () => prov.scale("a'b", 1), () => prov.destroy('$(x)'), () => prov.restart('a b')]) {
      expect((await rejection(call())).code).toBe('MALFORMED_REQUEST')
    }
    expect(existsSync(marker())).toBe(false)
  })

  test('error: hostile host configuration is refused at construction', () => {
    const h = lab.hosts[0]!
    expect(() => lab.provisioner({ hosts: [{ ...h, remoteRoot: `/tmp/$(touch ${marker()})` }] })).toThrow(/remoteRoot/)
    expect(() => lab.provisioner({ hosts: [{ ...h, name: 'h;x' }] })).toThrow(/name/)
    expect(() => lab.provisioner({ operatorId: 'op $(x)' })).toThrow(/operatorId/)
  })

  test('behavior: a hostile artifact URL downloaded by the host is one curl argument, nothing runs', async () => {
    const prov = lab.provisioner({ artifactTransfer: 'host-download' })
    const req = lab.request('sec-url')
    const url = `${lab.artifacts.url}/x$(touch ${marker()})\`touch ${marker()}\`;touch ${marker()}`
    // a digest the host has never cached, so it must download
    lab.artifacts.put('never-installed', `#!/bin/sh\n# ${Math.random()}\nexec sleep 1000\n`)
    try {
      const err = await rejection(prov.provision({ ...req, source: { kind: 'native', url, sha256: lab.artifacts.sha256('never-installed') } }))
      expect({ code: err.code, reason: err.reason, retryable: err.retryable }).toEqual({ code: 'ARTIFACT_UNREACHABLE', reason: 'ARTIFACT_UNREACHABLE', retryable: true })
      expect(existsSync(marker())).toBe(false)
    } finally {
      await prov.destroy('sec-url')
    }
  })

  test('error: bytes that do not match the sha256 are refused on the host and never made executable', async () => {
    const prov = lab.provisioner({ artifactTransfer: 'host-download' })
    lab.artifacts.put('expected', `#!/bin/sh\n# ${Math.random()}\nexec sleep 1000\n`)
    const sha256 = lab.artifacts.sha256('expected')
    lab.artifacts.fail('expected', { body: '#!/bin/sh\ntouch /tmp/should-never-run\n' })
    const req = lab.request('sec-digest')
    try {
      const err = await rejection(prov.provision({ ...req, source: { kind: 'native', url: lab.artifacts.urlOf('expected'), sha256 } }))
      expect({ code: err.code, reason: err.reason, retryable: err.retryable }).toEqual({ code: 'ARTIFACT_DIGEST_MISMATCH', reason: 'ARTIFACT_DIGEST_MISMATCH', retryable: false })
      const artifacts = join(lab.hosts[0]!.remoteRoot!, 'artifacts')
      const files = existsSync(artifacts) ? readdirSync(artifacts) : []
      expect(files.filter((f) => f.includes(sha256))).toEqual([])
    } finally {
      await prov.destroy('sec-digest')
    }
    expect(execFileSync('sh', ['-c', `ls ${JSON.stringify(join(lab.hosts[0]!.remoteRoot!, 'ops', 'op-test'))} 2>/dev/null || true`], { encoding: 'utf8' })).not.toContain('sec-digest')
  })
})

describe.skipIf(!!noSshd)('ssh security: a workload running as the SSH user', () => {
  test('error: a workload that rewrites the host agent and its own artifact gets neither run', async () => {
    const agentRan = join(lab.dir, 'AGENT-TAMPERED-RAN')
    const binRan = join(lab.dir, 'BIN-TAMPERED-RAN')
    lab.artifacts.put(
      'tamper',
      `#!/bin/sh
# once told to (the file "go" in its data dir), rewrite the agent and this very artifact
self=$0
[ -e "$DATA_DIR/tampered" ] || (
  while [ ! -e "$DATA_DIR/go" ]; do sleep 0.2; done
  for f in "$DATA_DIR"/../../../../../bin/bpo-host-*.sh; do printf '\\ntouch %s\\n' '${agentRan}' >> "$f"; done
  printf '#!/bin/sh\\ntouch %s\\nexec sleep 1000\\n' '${binRan}' > "$self.new" && mv -f "$self.new" "$self"
  touch "$DATA_DIR/tampered"
) </dev/null >/dev/null 2>&1 &
exec node '${demoServicePath}'
`,
    )
    const prov = lab.provisioner({ supervisor: 'setsid', healthTimeoutMs: 20_000 })
    const root = lab.hosts[0]!.remoteRoot!
    const id = 'sec-tamper'
    const req = { ...lab.request(id), source: { kind: 'native' as const, url: lab.artifacts.urlOf('tamper'), sha256: lab.artifacts.sha256('tamper') } }
    const agentFile = join(root, 'bin', `bpo-host-${HOST_SCRIPT_VERSION}.sh`)
    const rdir = join(root, 'ops', 'op-test', id, 'replicas', '0')
    const wait = async (what: string, fn: () => boolean) => {
      for (let i = 0; i < 120 && !fn(); i++) await new Promise((r) => setTimeout(r, 250))
      if (!fn()) throw new Error(`timed out waiting for ${what}`)
    }
    try {
      expect((await prov.provision(req)).replicasReady).toBe(1)
      writeFileSync(join(root, 'ops', 'op-test', id, 'data', '0', 'go'), '')
      await wait('the tampering', () => existsSync(join(root, 'ops', 'op-test', id, 'data', '0', 'tampered')))
      expect(readFileSync(agentFile, 'utf8')).not.toBe(HOST_SCRIPT)
      // the next agent command refuses the modified file and installs the right one again
      expect((await prov.status(id)).replicasReady).toBe(1)
      expect(existsSync(agentRan)).toBe(false)
      expect(readFileSync(agentFile, 'utf8')).toBe(HOST_SCRIPT)
      // the supervisor restarts a crashed workload only from bytes that still match the digest
      process.kill(Number(readFileSync(join(rdir, 'child.pid'), 'utf8').trim()), 'SIGKILL')
      await wait('a refused restart', () => existsSync(join(rdir, 'restarts')) && /exit 24/.test(readFileSync(join(rdir, 'restarts'), 'utf8')))
      expect(readFileSync(join(rdir, 'log'), 'utf8')).toContain('does not match its sha256')
      expect(existsSync(binRan)).toBe(false)
      // the daemon's restart installs verified bytes again
      expect((await prov.restart(id)).replicasReady).toBe(1)
      expect(existsSync(binRan)).toBe(false)
      expect(existsSync(agentRan)).toBe(false)
    } finally {
      await destroyAll(prov)
    }
    expect(existsSync(agentRan)).toBe(false)
  })
})

describe.skipIf(!!noSshd)('ssh security: artifact URLs', () => {
  test('error: non-public artifact hosts are refused for upload and host download unless allowed', async () => {
    const strict = lab.provisioner({ artifactAllowHosts: [] })
    const hostDl = lab.provisioner({ artifactAllowHosts: [], artifactTransfer: 'host-download' })
    lab.artifacts.put('ssrf', `#!/bin/sh\n# ${Math.random()}\nexec sleep 1000\n`)
    const sha256 = lab.artifacts.sha256('ssrf')
    const port = new URL(lab.artifacts.url).port
    const cases: [typeof strict, string][] = [
      [strict, lab.artifacts.urlOf('ssrf')],
      [strict, `http://localhost:${port}/ssrf`],
      [hostDl, 'http://169.254.169.254/latest/meta-data/'],
      [hostDl, `http://10.1.2.3:${port}/ssrf`],
      [hostDl, `http://[::ffff:127.0.0.1]:${port}/ssrf`],
      [hostDl, `http://localhost:${port}/ssrf`],
    ]
    const hits = lab.artifacts.hits('ssrf')
    try {
      for (const [prov, url] of cases) {
        const err = await rejection(prov.provision({ ...lab.request('sec-ssrf'), source: { kind: 'native', url, sha256 } }))
        expect({ url, code: err.code, retryable: err.retryable }).toEqual({ url, code: 'ARTIFACT_HOST_REFUSED', retryable: false })
      }
      expect(lab.artifacts.hits('ssrf')).toBe(hits)
    } finally {
      await destroyAll(strict)
      await destroyAll(hostDl)
    }
  })
})

describe.skipIf(!!noSshd)('ssh security: adoption from a host manifest', () => {
  test('error: a manifest rewritten on the host (unit, ports, replicas, kind) is not adopted by a daemon without a ledger', async () => {
    const prov = lab.provisioner()
    const id = 'sec-adopt'
    const file = join(lab.hosts[0]!.remoteRoot!, 'ops', 'op-test', id, 'manifest.json')
    try {
      await prov.provision(lab.request(id))
      const good = readFileSync(file, 'utf8')
      const m = JSON.parse(good) as Record<string, unknown>
      const from = lab.hosts[0]!.ports!.from
      const tampered: Record<string, unknown>[] = [
        { unit: { vcpu: 0, memoryGiB: 0, storageGiB: 0 } },
        { ports: { '0': 22 } },
        { ports: { '0': from, '1': from }, replicas: 2 },
        { replicas: 1_000_000 },
        { replicas: 1, dataReplicas: 0 },
        { kind: 'container' },
      ]
      for (const bad of tampered) {
        writeFileSync(file, JSON.stringify({ ...m, ...bad }))
        const fresh = lab.provisioner()
        expect({ bad, exists: (await fresh.status(id)).exists }).toEqual({ bad, exists: false })
        expect((await rejection(fresh.scale(id, 1))).code).toBe('DEPLOYMENT_NOT_FOUND')
        expect(fresh.placements()).toEqual([])
      }
      // the control: the manifest as written is adopted
      writeFileSync(file, good)
      const fresh = lab.provisioner()
      expect((await fresh.status(id)).replicasReady).toBe(1)
    } finally {
      await destroyAll(prov)
    }
  })
})
