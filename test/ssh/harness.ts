/**
 * Shared setup of the SSH suites: real sshd "hosts" on 127.0.0.1 (distinct ports, remote roots and port ranges, all
 * on this machine's filesystem), the demo service behind a test artifact server, and provisioner factories.
 */
import { mkdtemp, readFile, readdir, rm, rmdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createTestCommon } from '../../core/common.js'
import type { ResourceSpec } from '../../core/spec.js'
import { createSshProvisioner, type SshProvisioner, type SshProvisionerParameters } from '../../provisioners/ssh/index.js'
import type { SshHost } from '../../provisioners/ssh/types.js'
import type { DeploymentRequest } from '../../provisioners/types.js'
import { startArtifactServer, type TestArtifactServer } from '../helpers/artifact-server.js'
import { demoServiceArtifact } from '../helpers/demo-service.js'
import { startSshd, type Sshd } from '../helpers/sshd.js'
import { resourceSpec } from '../helpers/spec.js'

export type SshLab = {
  sshds: Sshd[]
  hosts: SshHost[]
  artifacts: TestArtifactServer
  dir: string
  /** A provisioner over `hosts` (or the given ones) with its own state dir unless `stateDir` is given. */
  provisioner(o?: Partial<SshProvisionerParameters>): SshProvisioner
  request(deploymentId: string, o?: { replicas?: number; spec?: Partial<ResourceSpec>; env?: Record<string, string>; placement?: string }): DeploymentRequest
  /** Close every provisioner, destroy nothing; stop sshd and servers; remove temp dirs. */
  stop(): Promise<void>
}

export const spec = (o: Partial<ResourceSpec> = {}): ResourceSpec => resourceSpec({ memoryGiB: 0.25, storageGiB: 1, ...o })

/** Start `n` sshd hosts; host i costs `costs[i]` USD/h and holds `capacity`. */
export async function startSshLab(o: { hosts?: number; costs?: string[]; capacity?: SshHost['capacity']; sshdEnv?: Record<string, string> | Record<string, string>[] } = {}): Promise<SshLab> {
  const n = o.hosts ?? 2
  const dir = await mkdtemp(join(tmpdir(), 'bpo-ssh-lab-'))
  const sshds: Sshd[] = []
  const provisioners: SshProvisioner[] = []
  try {
    for (let i = 0; i < n; i++) sshds.push(await startSshd({ env: Array.isArray(o.sshdEnv) ? o.sshdEnv[i] : o.sshdEnv }))
  } catch (err) {
    await Promise.all(sshds.map((s) => s.stop()))
    throw err
  }
  // below the ephemeral range, random per run so parallel suites rarely meet (the agent also skips busy ports)
  const base = 20_000 + Math.floor(Math.random() * 120) * 100
  const hosts: SshHost[] = sshds.map((s, i) => ({
    name: `h${i + 1}`,
    address: s.address,
    port: s.port,
    user: s.user,
    privateKey: s.privateKey,
    hostKey: s.hostKey,
    capacity: o.capacity ?? { vcpu: 8, memoryGiB: 8, storageGiB: 100 },
    hourlyUsd: o.costs?.[i] ?? `0.0${i + 1}`,
    region: 'eu-test',
    remoteRoot: join(dir, `root-h${i + 1}`),
    ports: { from: base + i * 40, to: base + i * 40 + 39 },
  }))
  const artifacts = await startArtifactServer({ 'demo-service': demoServiceArtifact() })
  let seq = 0
  return {
    sshds,
    hosts,
    artifacts,
    dir,
    provisioner(po = {}) {
      const { common } = createTestCommon()
      const prov = createSshProvisioner(common, {
        operatorId: 'op-test',
        hosts,
        stateDir: join(dir, `state-${++seq}`),
        healthTimeoutMs: 30_000,
        connectTimeoutMs: 10_000,
        // the lab's artifact server listens on 127.0.0.1, which downloads may reach only when allowed
        artifactAllowHosts: ['127.0.0.1'],
        ...po,
      })
      provisioners.push(prov)
      return prov
    },
    request(deploymentId, ro = {}) {
      return {
        deploymentId,
        serviceId: '7',
        blueprintId: '3',
        source: { kind: 'native', url: artifacts.urlOf('demo-service'), sha256: artifacts.sha256('demo-service') },
        spec: spec({ replicas: ro.replicas ?? 1, ...ro.spec }),
        healthPath: '/healthz',
        ...(ro.env ? { env: ro.env } : {}),
        ...(ro.placement ? { placement: ro.placement } : {}),
      }
    },
    async stop() {
      for (const x of provisioners) await destroyAll(x)
      await Promise.all(provisioners.map((x) => x.close().catch(() => undefined)))
      await Promise.all(sshds.map((s) => s.stop()))
      await artifacts.stop()
      await killLeftovers(dir)
      await rm(dir, { recursive: true, force: true })
    },
  }
}

/** Destroy every deployment the provisioner placed (best effort). */
export async function destroyAll(prov: SshProvisioner): Promise<void> {
  for (const pl of prov.placements()) await prov.destroy(pl.deploymentId).catch(() => undefined)
}

/** Safety net without SSH: kill every supervisor group whose pidfile lies under `dir`, remove its cgroups. */
export async function killLeftovers(dir: string): Promise<void> {
  const files = await readdir(dir, { recursive: true }).catch(() => [] as string[])
  for (const f of files.filter((x) => x.endsWith('/supervisor.pid'))) {
    const pid = Number((await readFile(join(dir, f), 'utf8').catch(() => '')).trim())
    if (!Number.isInteger(pid) || pid <= 1) continue
    try {
      process.kill(-pid, 'SIGKILL')
    } catch {
      // gone already
    }
  }
  await new Promise((r) => setTimeout(r, 300))
  for (const f of files.filter((x) => x.endsWith('/cgroups'))) {
    for (const g of (await readFile(join(dir, f), 'utf8').catch(() => '')).split('\n').filter((x) => x.startsWith('/sys/fs/cgroup/'))) {
      await rmdir(g).catch(() => undefined)
    }
  }
}
