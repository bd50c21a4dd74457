/**
 * Replicas on an SSH host outlive the SSH session and the daemon's connection, are restarted by their supervisor
 * when they crash, and run inside the cgroup limits of their spec where the host offers cgroups.
 */
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { chmodSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { HOST_SCRIPT, HOST_SCRIPT_VERSION } from '../../provisioners/ssh/hostScript.js'
import { demoServicePath, escapingArtifact, probeDemo, readDemoInfo } from '../helpers/demo-service.js'
import { generateKeyPair, startSshd } from '../helpers/sshd.js'
import { destroyAll, startSshLab, type SshLab } from './harness.js'
import { sshdMissing } from '../helpers/sshd.js'

const noSshd = sshdMissing()
if (noSshd) test.skip(`real sshd suites: ${noSshd}`, () => undefined)

let lab: SshLab
const pidfiles: string[] = []
beforeAll(async () => {
  lab = await startSshLab({ hosts: 1 })
})
afterAll(async () => {
  // whatever a failed test left running is killed by its process group, even without SSH
  for (const f of pidfiles) {
    try {
      process.kill(-Number(readFileSync(f, 'utf8').trim()), 'SIGKILL')
    } catch {
      // already gone
    }
  }
  await lab?.stop()
})

const replicaDir = (root: string, id: string, i = 0) => join(root, 'ops', 'op-test', id, 'replicas', String(i))
/** Running (a zombie counts as dead: PID 1 of this machine's sandbox does not always reap orphans). */
const alive = (pid: number) => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z'
  } catch {
    return false
  }
}
async function until<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, ms = 30_000): Promise<T> {
  const end = Date.now() + ms
  for (;;) {
    const v = await fn()
    if (v !== undefined && v !== false) return v
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 250))
  }
}

describe.skipIf(!!noSshd)('ssh supervision', () => {
  test('behavior: replicas keep serving after the daemon disconnects and sshd itself is gone', async () => {
    const clientKey = await generateKeyPair()
    const sshd = await startSshd({ clientKey })
    const host = { ...lab.hosts[0]!, name: 'lonely', port: sshd.port, hostKey: sshd.hostKey, privateKey: clientKey.privateKey, remoteRoot: join(lab.dir, 'root-lonely') }
    const stateDir = join(lab.dir, 'state-lonely')
    const prov = lab.provisioner({ hosts: [host], stateDir })
    const st = await prov.provision(lab.request('sup-detach', { replicas: 2 }))
    expect(st.replicasReady).toBe(2)
    const dir0 = replicaDir(host.remoteRoot, 'sup-detach', 0)
    pidfiles.push(join(dir0, 'supervisor.pid'), join(replicaDir(host.remoteRoot, 'sup-detach', 1), 'supervisor.pid'))
    const supervisor = Number(readFileSync(join(dir0, 'supervisor.pid'), 'utf8'))
    const before = await readDemoInfo(st.endpoints[0]!)

    await prov.close()
    await sshd.stop()
    expect(sshd.running()).toBe(false)
    await new Promise((r) => setTimeout(r, 1_000))
    for (const e of st.endpoints) expect(await probeDemo(e)).toBe(true)
    const after = await readDemoInfo(st.endpoints[0]!)
    expect(after.pid).toBe(before.pid)
    expect(alive(supervisor)).toBe(true)

    // a new sshd on the same machine (new port, new host key): a new daemon adopts and removes it all
    const again = await startSshd({ clientKey })
    try {
      const prov2 = lab.provisioner({ hosts: [{ ...host, port: again.port, hostKey: again.hostKey }], stateDir })
      expect((await prov2.status('sup-detach')).replicasReady).toBe(2)
      await prov2.destroy('sup-detach')
      expect(alive(supervisor)).toBe(false)
      for (const e of st.endpoints) expect(await probeDemo(e, 2_000)).toBe(false)
    } finally {
      await again.stop()
    }
  })

  test('behavior: a crashed workload is restarted by its supervisor; its data dir is kept', async () => {
    const prov = lab.provisioner()
    const root = lab.hosts[0]!.remoteRoot!
    try {
      const st = await prov.provision(lab.request('sup-crash'))
      const dir = replicaDir(root, 'sup-crash')
      pidfiles.push(join(dir, 'supervisor.pid'))
      const first = await readDemoInfo(st.endpoints[0]!)
      process.kill(first.pid, 'SIGKILL')
      const second = await until('a restarted workload', async () => {
        const info = await readDemoInfo(st.endpoints[0]!).catch(() => undefined)
        return info && info.pid !== first.pid ? info : undefined
      })
      expect(second.starts).toBe(first.starts + 1)
      expect(readFileSync(join(dir, 'restarts'), 'utf8')).toMatch(/exit 137/)
      const status = await prov.status('sup-crash')
      expect({ ready: status.replicasReady, healthy: status.healthy }).toEqual({ ready: 1, healthy: true })
    } finally {
      await destroyAll(prov)
    }
  })

  test('behavior: restart brings back a replica whose supervisor was killed', async () => {
    const prov = lab.provisioner()
    const root = lab.hosts[0]!.remoteRoot!
    try {
      const st = await prov.provision(lab.request('sup-restart'))
      const dir = replicaDir(root, 'sup-restart')
      const supervisor = Number(readFileSync(join(dir, 'supervisor.pid'), 'utf8'))
      process.kill(-supervisor, 'SIGKILL')
      await until('the replica to go down', async () => !(await probeDemo(st.endpoints[0]!, 1_000)))
      const down = await prov.status('sup-restart')
      expect({ ready: down.replicasReady, healthy: down.healthy }).toEqual({ ready: 0, healthy: false })
      expect(down.detail).toMatch(/replica 0: dead/)
      const back = await prov.restart('sup-restart')
      expect({ ready: back.replicasReady, healthy: back.healthy }).toEqual({ ready: 1, healthy: true })
      pidfiles.push(join(dir, 'supervisor.pid'))
      expect(Number(readFileSync(join(dir, 'supervisor.pid'), 'utf8'))).not.toBe(supervisor)
    } finally {
      await destroyAll(prov)
    }
  })

  test('behavior: a workload orphaned by a supervisor killed alone is reaped by restart, not duplicated', async () => {
    const prov = lab.provisioner()
    const root = lab.hosts[0]!.remoteRoot!
    try {
      const st = await prov.provision(lab.request('sup-orphan'))
      const dir = replicaDir(root, 'sup-orphan')
      pidfiles.push(join(dir, 'supervisor.pid'))
      const supervisor = Number(readFileSync(join(dir, 'supervisor.pid'), 'utf8'))
      const orphan = (await readDemoInfo(st.endpoints[0]!)).pid
      process.kill(supervisor, 'SIGKILL')
      await until('the supervisor to die', () => !alive(supervisor))
      expect(alive(orphan)).toBe(true)
      const back = await prov.restart('sup-orphan')
      expect({ ready: back.replicasReady, endpoints: back.endpoints }).toEqual({ ready: 1, endpoints: st.endpoints })
      expect(alive(orphan)).toBe(false)
      expect((await readDemoInfo(back.endpoints[0]!)).pid).not.toBe(orphan)
    } finally {
      await destroyAll(prov)
    }
  })

  test('behavior: scaling back up moves a replica whose port was taken meanwhile', async () => {
    const prov = lab.provisioner()
    const squatter = createServer((_req, res) => res.writeHead(418).end())
    try {
      const st = await prov.provision(lab.request('sup-port'))
      await prov.scale('sup-port', 0)
      const oldPort = Number(new URL(st.endpoints[0]!).port)
      await new Promise<void>((resolve, reject) => {
        squatter.once('error', reject)
        squatter.listen(oldPort, '127.0.0.1', () => resolve())
      })
      const back = await prov.scale('sup-port', 1)
      expect(back.replicasReady).toBe(1)
      expect(back.endpoints).not.toEqual(st.endpoints)
      expect((await readDemoInfo(back.endpoints[0]!)).deployment).toBe('sup-port')
    } finally {
      squatter.close()
      await destroyAll(prov)
    }
  })

  test('behavior: CPU and memory limits of the spec are applied through cgroups, and removed with the replica', async () => {
    const prov = lab.provisioner()
    const root = lab.hosts[0]!.remoteRoot!
    try {
      await prov.provision(lab.request('sup-limits', { spec: { vcpu: 0.5, memoryGiB: 0.375 } }))
      const dir = replicaDir(root, 'sup-limits')
      pidfiles.push(join(dir, 'supervisor.pid'))
      const limits = readFileSync(join(dir, 'limits'), 'utf8')
      // this machine offers cgroup v1 (see MACHINE-NOTES); a host without cgroups would say "none: ..."
      expect(limits).toMatch(/^cgroup-v[12] memory=402653184 cpu_quota_us=50000/)
      const child = readFileSync(join(dir, 'child.pid'), 'utf8').trim()
      const cgroups = readFileSync(`/proc/${child}/cgroup`, 'utf8')
      const memLine = cgroups.split('\n').find((l) => /:memory:/.test(l) || l.startsWith('0::'))!
      const group = memLine.split(':').slice(2).join(':')
      expect(group).toMatch(/\/bpo\/bpo-[0-9a-f]{10}-sup-limits-r0$/)
      const paths = readFileSync(join(dir, 'cgroups'), 'utf8').trim().split('\n')
      if (limits.startsWith('cgroup-v1')) {
        const mem = paths.find((x) => x.includes('/memory/'))!
        const cpu = paths.find((x) => x.includes('/cpu/'))!
        expect(readFileSync(join(mem, 'memory.limit_in_bytes'), 'utf8').trim()).toBe('402653184')
        expect(readFileSync(join(cpu, 'cpu.cfs_quota_us'), 'utf8').trim()).toBe('50000')
      } else {
        expect(readFileSync(join(paths[0]!, 'memory.max'), 'utf8').trim()).toBe('402653184')
      }
      await prov.scale('sup-limits', 0)
      for (const x of paths) expect(existsSync(x)).toBe(false)
    } finally {
      await destroyAll(prov)
    }
  })

  test('error: forcing systemd supervision on a host where systemd does not run is refused', async () => {
    const prov = lab.provisioner({ supervisor: 'systemd' })
    try {
      const err = (await prov.provision(lab.request('sup-systemd')).catch((e: unknown) => e)) as { code?: string; retryable?: boolean }
      expect({ code: err.code, retryable: err.retryable }).toEqual({ code: 'SSH_HOST_UNSUPPORTED', retryable: false })
    } finally {
      await destroyAll(prov)
    }
  })

  /** A provisioner whose deployment `id` runs escapingArtifact(); returns the escapee's pid and the replica's cgroups. */
  async function escaped(id: string) {
    lab.artifacts.put('escape', escapingArtifact())
    const prov = lab.provisioner({ supervisor: 'setsid' })
    const root = lab.hosts[0]!.remoteRoot!
    const req = { ...lab.request(id), source: { kind: 'native' as const, url: lab.artifacts.urlOf('escape'), sha256: lab.artifacts.sha256('escape') } }
    const st = await prov.provision(req)
    expect(st.replicasReady).toBe(1)
    const dir = replicaDir(root, id)
    pidfiles.push(join(dir, 'supervisor.pid'))
    const pidFile = join(root, 'ops', 'op-test', id, 'data', '0', 'escapee.pid')
    const escapee = await until('the escapee', () => (existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8').trim()) : undefined))
    const groups = readFileSync(join(dir, 'cgroups'), 'utf8').trim().split('\n').filter(Boolean)
    return { prov, root, dir, escapee, groups }
  }
  const sessionOf = (pid: number) => readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[3]

  test('behavior: destroy kills a grandchild that left the supervisor\'s process group and session (setsid, env cleared); no cgroup is left', async (ctx) => {
    const { prov, dir, escapee, groups } = await escaped('sup-escape')
    try {
      if (!groups.length) return ctx.skip('no writable cgroups on this host')
      expect(alive(escapee)).toBe(true)
      const supervisor = Number(readFileSync(join(dir, 'supervisor.pid'), 'utf8'))
      expect(sessionOf(escapee)).not.toBe(sessionOf(supervisor))
      for (const g of groups) expect(readFileSync(join(g, 'cgroup.procs'), 'utf8').split('\n')).toContain(String(escapee))
      await prov.destroy('sup-escape')
      expect(alive(escapee)).toBe(false)
      for (const g of groups) expect(existsSync(g)).toBe(false)
      expect((await prov.listOwned()).filter((r) => r.deploymentId === 'sup-escape')).toEqual([])
    } finally {
      await destroyAll(prov)
    }
  })

  test('behavior: listOwned reports a populated cgroup whose deployment dir is gone; destroy (the sweep) kills and removes it', async (ctx) => {
    const { prov, root, dir, escapee, groups } = await escaped('sup-escape2')
    try {
      if (!groups.length) return ctx.skip('no writable cgroups on this host')
      // the supervisor group dies and the deployment dir is lost: only the escapee in its cgroup remains
      process.kill(-Number(readFileSync(join(dir, 'supervisor.pid'), 'utf8')), 'SIGKILL')
      rmSync(join(root, 'ops', 'op-test', 'sup-escape2'), { recursive: true, force: true })
      expect(alive(escapee)).toBe(true)
      const fresh = lab.provisioner({ supervisor: 'setsid' })
      const owned = (await fresh.listOwned()).filter((r) => r.deploymentId === 'sup-escape2')
      expect(owned.map((r) => r.kind)).toEqual(['cgroup'])
      await fresh.destroy('sup-escape2')
      expect(alive(escapee)).toBe(false)
      for (const g of groups) expect(existsSync(g)).toBe(false)
      expect((await fresh.listOwned()).filter((r) => r.deploymentId === 'sup-escape2')).toEqual([])
    } finally {
      await destroyAll(prov)
    }
  })

  test('behavior: with a workload user the workload runs as that user and can rewrite neither the agent nor its artifact', async () => {
    // the user must be able to reach its data dir: the lab's temp dir is 0700
    chmodSync(lab.dir, 0o755)
    const root = join(lab.dir, 'root-user')
    const host = { ...lab.hosts[0]!, name: 'h-user', workloadUser: 'nobody', remoteRoot: root }
    const agentRan = join(lab.dir, 'USER-AGENT-RAN')
    lab.artifacts.put(
      'tamper-user',
      `#!/bin/sh
self=$0
(
  while [ ! -e "$DATA_DIR/go" ]; do sleep 0.2; done
  for f in "$DATA_DIR"/../../../../../bin/bpo-host-*.sh; do printf '\\ntouch %s\\n' '${agentRan}' >> "$f"; done
  printf '#!/bin/sh\\nexit 0\\n' > "$self"
  touch "$DATA_DIR/tampered"
) </dev/null >/dev/null 2>&1 &
exec node '${demoServicePath}'
`,
    )
    const sha256 = lab.artifacts.sha256('tamper-user')
    const prov = lab.provisioner({ hosts: [host], supervisor: 'setsid' })
    const id = 'sup-user'
    try {
      const st = await prov.provision({ ...lab.request(id), source: { kind: 'native', url: lab.artifacts.urlOf('tamper-user'), sha256 } })
      expect(st.replicasReady).toBe(1)
      pidfiles.push(join(replicaDir(root, id), 'supervisor.pid'))
      const { pid } = await readDemoInfo(st.endpoints[0]!)
      expect(readFileSync(`/proc/${pid}/status`, 'utf8')).toMatch(/^Uid:\s+65534\s/m)
      const data = join(root, 'ops', 'op-test', id, 'data', '0')
      writeFileSync(join(data, 'go'), '')
      await until('the tampering attempt', () => existsSync(join(data, 'tampered')))
      expect(readFileSync(join(root, 'bin', `bpo-host-${HOST_SCRIPT_VERSION}.sh`), 'utf8')).toBe(HOST_SCRIPT)
      expect(createHash('sha256').update(readFileSync(join(root, 'artifacts', sha256))).digest('hex')).toBe(sha256)
      expect((await prov.status(id)).replicasReady).toBe(1)
      expect(existsSync(agentRan)).toBe(false)
    } finally {
      await destroyAll(prov)
    }
  })

  test('behavior: nothing of a destroyed deployment is left on the host', async () => {
    const prov = lab.provisioner()
    const root = lab.hosts[0]!.remoteRoot!
    await prov.provision(lab.request('sup-gone', { replicas: 2 }))
    await prov.destroy('sup-gone')
    expect(existsSync(join(root, 'ops', 'op-test', 'sup-gone'))).toBe(false)
    const ps = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' })
    expect(ps).not.toContain('/sup-gone/')
  })
})
