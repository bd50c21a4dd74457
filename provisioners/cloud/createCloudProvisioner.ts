/**
 * The shared machine lifecycle of every cloud target: a replica is one VM of the offer's instance type in the offer's
 * region. Each VM boots with a host key the daemon derived (no trust on first use) and the operator's login key, and
 * is handed as a host to its own SSH provisioner, which runs the blueprint exactly as on the operator's own hosts.
 * A provider plugs in as a CloudDriver (provisioners/cloud/types.ts); nothing here knows a provider's API.
 */
import { createHash } from 'node:crypto'
import { setMaxListeners } from 'node:events'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
// ssh2 is CommonJS: Node's ESM loader finds `Client` but not `utils` as a named export (vitest's interop hides that)
import ssh2 from 'ssh2'
import type { Common } from '../../core/common.js'
import { AbortedError } from '../../core/errors.js'
import { sleep, withTimeout } from '../../core/retry.js'
import type { Secret } from '../../config/secrets.js'
import { ProvisionError, TargetUnreachableError } from '../errors.js'
import { createSshProvisioner, type SshProvisioner, type SshProvisionerParameters } from '../ssh/index.js'
import { assertDeploymentId, assertReplicas, assertRequest } from '../ssh/validate.js'
import type { CallOptions, DeploymentRequest, DeploymentStatus, OwnedResource, Provisioner, ReplicaUsage, SourceKind } from '../types.js'
import { openDeploymentStore, type CloudDeployment } from './deploymentStore.js'
import { failoverError } from './errors.js'
import { deriveHostKey } from './hostKey.js'
import { ownershipTags, resourceName } from './ownership.js'
import type { CloudDriver, CloudVm } from './types.js'
import { faultPoint } from '../../core/faults.js'
import { buildUserData } from './userData.js'

export type CloudProvisionerParameters = {
  driver: CloudDriver
  /** This operator's ownership tag value. */
  operatorId: string
  /** The cloud target's own directory (deployment store, per-VM SSH ledgers, artifact cache). */
  dataDir: string
  /** The operator's SSH login private key (OpenSSH); its public half is authorized on every VM. */
  loginKey: Secret
  /** CIDR allowed to reach SSH on the VMs (the daemon's address, e.g. "203.0.113.7/32"). */
  sshSourceCidr: string
  /** Regions this operator buys in; empty means any. Also where listOwned and unknown deployments are looked up. */
  regions?: string[]
  /** Most VMs this target runs at once (all deployments). Default 20. */
  maxInstances?: number
  /** How long a new or started VM may take to run and answer SSH, ms. Default 300_000. */
  bootTimeoutMs?: number
  /** How often a booting VM is polled, ms. Default 1_000. */
  pollMs?: number
  /** Whole-call default timeouts in ms: provision/scale 1_200_000, the others 300_000. */
  callTimeoutMs?: { provision?: number; other?: number }
  /** Options passed to every per-VM SSH provisioner (artifact transfer, health timeouts, testing sources...). */
  ssh?: Omit<Partial<SshProvisionerParameters>, 'operatorId' | 'hosts' | 'stateDir' | 'replicaIndexBase'>
}

export type CloudProvisioner = Provisioner & {
  /** The provider this target buys from ("aws", "hetzner"). */
  readonly provider: string
}

const VM_HOST = 'vm'

/** Create a cloud provisioner over one provider's driver. */
export function createCloudProvisioner(commonIn: Common, p: CloudProvisionerParameters): CloudProvisioner {
  const d = p.driver
  const common = commonIn.child(`provisioner-${d.provider}`)
  const log = common.logger
  const store = openDeploymentStore(p.dataDir, `${d.provider}-deployments`)
  const maxInstances = p.maxInstances ?? 20
  const bootTimeoutMs = p.bootTimeoutMs ?? 300_000
  const pollMs = p.pollMs ?? 1_000
  const provisionMs = p.callTimeoutMs?.provision ?? 1_200_000
  const otherMs = p.callTimeoutMs?.other ?? 300_000
  const regions = p.regions ?? []
  let loginPublicKey: string
  {
    const parsed = ssh2.utils.parseKey(p.loginKey.reveal())
    if (parsed instanceof Error || Array.isArray(parsed)) throw new TypeError(`${d.provider}: the SSH login key (${p.loginKey.ref}) is not a single unencrypted private key`)
    loginPublicKey = `${parsed.type} ${parsed.getPublicSSH().toString('base64')}`
  }
  const allowTesting = p.ssh?.allowTestingSources ?? false
  const sourceKinds: SourceKind[] = allowTesting ? ['native', 'container', 'testing'] : ['native', 'container']
  const vmSsh = new Map<string, SshProvisioner>()
  const vmDir = (id: string, i: number) => join(p.dataDir, `${d.provider}-vms`, `${id}-r${i}`)

  const locks = new Map<string, Promise<unknown>>()
  function locked<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const prev = locks.get(id) ?? Promise.resolve()
    const run = prev.then(fn, fn)
    const tail = run.catch(() => undefined)
    locks.set(id, tail)
    void tail.then(() => {
      if (locks.get(id) === tail) locks.delete(id)
    })
    return run
  }

  function call<T>(what: string, o: CallOptions | undefined, defMs: number, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    if (o?.signal?.aborted) return Promise.reject(new AbortedError(`${d.provider} ${what}`, o.signal.reason))
    const parent = o?.signal ? AbortSignal.any([o.signal, common.signal]) : common.signal
    return withTimeout(
      `${d.provider} ${what}`,
      o?.timeoutMs ?? defMs,
      (signal) => {
        setMaxListeners(0, signal)
        return fn(signal)
      },
      parent,
    )
  }

  const servicePort = (req: DeploymentRequest) => req.spec.ports[0] ?? 8080
  const regionOf = (rec: CloudDeployment) => rec.request.offer!.region

  /** The SSH provisioner of one replica's VM (one host, its own ledger, kept across stop/start and replacement). */
  function sshOf(id: string, i: number): SshProvisioner {
    const key = `${id}#${i}`
    let s = vmSsh.get(key)
    if (!s) {
      s = createSshProvisioner(common, { ...p.ssh, operatorId: p.operatorId, hosts: [], stateDir: vmDir(id, i), replicaIndexBase: i })
      vmSsh.set(key, s)
    }
    return s
  }

  async function forgetVmSsh(id: string, i: number) {
    const key = `${id}#${i}`
    await vmSsh.get(key)?.close().catch(() => undefined)
    vmSsh.delete(key)
    await rm(vmDir(id, i), { recursive: true, force: true })
  }

  function handToSsh(rec: CloudDeployment, vm: CloudVm): SshProvisioner {
    const req = rec.request
    const s = sshOf(req.deploymentId, vm.replica)
    const key = deriveHostKey({ loginKey: p.loginKey, operatorId: p.operatorId, deploymentId: req.deploymentId, replica: vm.replica, generation: vm.generation })
    const port = servicePort(req)
    s.addHost({
      name: VM_HOST,
      address: vm.publicIp!,
      port: 22,
      user: d.sshUser,
      privateKey: p.loginKey.reveal(),
      hostKey: key.publicKey,
      capacity: { vcpu: req.spec.vcpu, memoryGiB: req.spec.memoryGiB, storageGiB: req.spec.storageGiB },
      hourlyUsd: req.offer!.hourlyUsd,
      region: req.offer!.region,
      remoteRoot: d.remoteRoot(vm),
      ports: { from: port, to: port },
    })
    return s
  }

  /** The request one VM's SSH provisioner runs: the same deployment, one replica, pinned to the VM. */
  function subRequest(req: DeploymentRequest): DeploymentRequest {
    const { offer: _offer, placement: _placement, ...rest } = req
    return { ...rest, spec: { ...req.spec, replicas: 1 }, placement: VM_HOST }
  }

  function checkRequest(req: DeploymentRequest) {
    assertRequest(req)
    if (!sourceKinds.includes(req.source.kind)) throw new ProvisionError(`source kind ${req.source.kind} is not accepted by this operator`, { reason: 'MALFORMED_REQUEST', code: 'SOURCE_KIND_REFUSED' })
    const o = req.offer
    if (!o) throw new ProvisionError(`${d.provider}: the request for ${req.deploymentId} carries no offer to buy`, { code: 'OFFER_MISSING', reason: 'NO_FEASIBLE_OFFER', retryable: false })
    const problems: string[] = []
    if (o.provider !== d.provider) problems.push(`offer.provider: got ${JSON.stringify(o.provider)}, expected ${JSON.stringify(d.provider)}`)
    if (regions.length && !regions.includes(o.region)) problems.push(`offer.region: ${JSON.stringify(o.region)} is not among the allowed regions ${regions.join(', ')}`)
    if (!/^[a-z0-9][a-z0-9.-]{0,62}$/.test(o.region)) problems.push(`offer.region: got ${JSON.stringify(o.region)}`)
    if (!/^[a-z0-9][a-z0-9.-]{0,62}$/.test(o.instanceType)) problems.push(`offer.instanceType: got ${JSON.stringify(o.instanceType)}`)
    if (!/^\d+(\.\d+)?$/.test(o.hourlyUsd)) problems.push(`offer.hourlyUsd: got ${JSON.stringify(o.hourlyUsd)}, expected a decimal string`)
    for (const port of req.spec.ports.length ? req.spec.ports : [8080]) if (port < 1024) problems.push(`spec.ports: ${port} is below 1024; cloud replicas serve on unprivileged ports`)
    if (req.spec.gpu.count > 0) problems.push('spec.gpu: GPU VMs are not supported by the cloud targets yet')
    if (problems.length) throw new ProvisionError(`${d.provider} cannot buy the offer for ${req.deploymentId}`, { code: 'OFFER_REFUSED', reason: 'NO_FEASIBLE_OFFER', retryable: false, details: problems })
  }

  const byReplica = (vms: CloudVm[]) => {
    const m = new Map<number, CloudVm>()
    // the newest generation of each replica wins; older ones are leftovers to delete
    for (const vm of vms) if ((m.get(vm.replica)?.generation ?? -1) < vm.generation) m.set(vm.replica, vm)
    return m
  }

  /** Poll until the VM runs with a public address (eventual consistency: unknown for a moment is normal). */
  async function waitRunning(vm: CloudVm, region: string, signal: AbortSignal): Promise<CloudVm> {
    const deadline = Date.now() + bootTimeoutMs
    let cur: CloudVm | undefined = vm
    for (;;) {
      if (cur && cur.state === 'running' && cur.publicIp) return cur
      if (cur && cur.state === 'terminated') throw new ProvisionError(`${d.provider}: VM ${vm.id} of ${vm.deploymentId} terminated while booting${cur.interrupted ? ' (spot interruption)' : ''}`, { code: 'CLOUD_VM_LOST', retryable: true, meta: { vm: vm.id } })
      if (Date.now() > deadline) throw new ProvisionError(`${d.provider}: VM ${vm.id} did not run within ${bootTimeoutMs} ms`, { code: 'CLOUD_BOOT_TIMEOUT', retryable: true, meta: { vm: vm.id } })
      await sleep(pollMs, signal)
      cur = (await d.getVm(vm.id, region, { signal })) ?? cur
    }
  }

  /** Poll until a stopping VM is stopped (or gone), within the boot deadline. */
  async function waitSettled(vm: CloudVm, region: string, signal: AbortSignal): Promise<void> {
    const deadline = Date.now() + bootTimeoutMs
    for (;;) {
      const cur = await d.getVm(vm.id, region, { signal })
      if (!cur || cur.state === 'stopped' || cur.state === 'terminated') return
      if (Date.now() > deadline) throw new ProvisionError(`${d.provider}: VM ${vm.id} did not stop within ${bootTimeoutMs} ms`, { code: 'CLOUD_BOOT_TIMEOUT', retryable: true, meta: { vm: vm.id } })
      await sleep(pollMs, signal)
    }
  }

  /** Run the replica on its VM through SSH, retrying while sshd is not up yet (within the boot deadline). */
  async function runOnVm(rec: CloudDeployment, vm: CloudVm, signal: AbortSignal): Promise<void> {
    const deadline = Date.now() + bootTimeoutMs
    for (;;) {
      const s = handToSsh(rec, vm)
      try {
        await s.provision(subRequest(rec.request), { signal })
        return
      } catch (err) {
        if (!(err instanceof TargetUnreachableError) || Date.now() > deadline || signal.aborted) throw err
        await sleep(pollMs, signal)
      }
    }
  }

  async function ensureReplica(rec: CloudDeployment, i: number, existing: CloudVm | undefined, firewallId: string, signal: AbortSignal): Promise<void> {
    const req = rec.request
    const id = req.deploymentId
    const region = regionOf(rec)
    let vm = existing
    if (vm && (vm.state === 'terminated' || vm.interrupted)) {
      log.warn({ deploymentId: id, replica: i, vm: vm.id, interrupted: vm.interrupted }, 'replacing a VM that is gone')
      vm = undefined
    }
    if (!vm) {
      // intent first: a replacement's generation is on disk before the VM exists
      const gen = Math.max(rec.generations[String(i)] ?? 0, existing ? existing.generation + 1 : 0)
      if (gen !== rec.generations[String(i)]) await store.update((all) => void (all[id]!.generations[String(i)] = gen))
      const volumeId = d.zeroMode === 'delete-keep-volume' && d.ensureVolume
        ? await d.ensureVolume({ deploymentId: id, serviceId: req.serviceId, replica: i, sizeGiB: Math.max(10, Math.ceil(req.spec.storageGiB)), region, tags: ownershipTags({ operatorId: p.operatorId, deploymentId: id, serviceId: req.serviceId, role: 'volume', replica: i }), name: resourceName(id, `r${i}-data`) }, { signal })
        : undefined
      const hostKey = deriveHostKey({ loginKey: p.loginKey, operatorId: p.operatorId, deploymentId: id, replica: i, generation: gen })
      const token = createHash('sha256').update(`${p.operatorId}\0${id}\0${i}\0${gen}`).digest('hex').slice(0, 64)
      log.info({ deploymentId: id, replica: i, generation: gen, region, instanceType: req.offer!.instanceType, spot: req.offer!.spot }, 'creating a VM')
      vm = await d.createVm(
        {
          deploymentId: id,
          serviceId: req.serviceId,
          replica: i,
          generation: gen,
          offer: req.offer!,
          userData: buildUserData({ hostKey, loginPublicKey }),
          firewallId,
          ...(volumeId ? { volumeId } : {}),
          tags: ownershipTags({ operatorId: p.operatorId, deploymentId: id, serviceId: req.serviceId, role: 'vm', replica: i, generation: gen }),
          name: resourceName(id, `r${i}-g${gen}`),
          idempotencyToken: token,
          diskGiB: Math.max(10, Math.ceil(req.spec.storageGiB)),
        },
        { signal },
      )
      // the fault suite kills the daemon here: the VM exists, nothing of it is recorded beyond the intent
      faultPoint('cloud.vm-created')
    } else if (vm.state === 'stopped' || vm.state === 'stopping') {
      if (vm.state === 'stopping') await waitSettled(vm, region, signal)
      log.info({ deploymentId: id, replica: i, vm: vm.id }, 'starting a stopped VM')
      await d.startVm(vm, region, { signal })
    }
    vm = await waitRunning(vm, region, signal)
    await runOnVm(rec, vm, signal)
  }

  /** Remove replica `vm`: scale to zero keeps its data (stop, or delete with the volume kept), otherwise delete. */
  async function retire(rec: CloudDeployment, vm: CloudVm, keepData: boolean, signal: AbortSignal): Promise<void> {
    const id = rec.request.deploymentId
    const region = regionOf(rec)
    const s = vmSsh.get(`${id}#${vm.replica}`)
    if (keepData) {
      if (vm.state === 'running' && vm.publicIp) {
        // stop the workload cleanly first, so its data is consistent when the VM goes away
        await handToSsh(rec, vm).scale(id, 0, { signal }).catch((err: unknown) => log.warn({ deploymentId: id, replica: vm.replica, err: (err as Error).message }, 'could not stop the replica cleanly before the VM'))
      }
      if (d.zeroMode === 'stop') {
        if (vm.state !== 'stopped' && vm.state !== 'stopping') await d.stopVm(vm, region, { signal })
        // stopped means the compute bill stopped; a VM still stopping could not be started again either
        await waitSettled(vm, region, signal)
      } else {
        await d.deleteVm(vm, region, { signal })
        // the volume is free to attach again only once the server is gone
        const deadline = Date.now() + bootTimeoutMs
        while ((await d.getVm(vm.id, region, { signal })) !== undefined) {
          if (Date.now() > deadline) throw new ProvisionError(`${d.provider}: VM ${vm.id} was not deleted within ${bootTimeoutMs} ms`, { code: 'CLOUD_BOOT_TIMEOUT', retryable: true, meta: { vm: vm.id } })
          await sleep(pollMs, signal)
        }
      }
      await s?.removeHost(VM_HOST).catch(() => undefined)
      // the ledger is kept (it describes what is on the disk / volume) but the host must be handed again
      if (s) {
        await s.close().catch(() => undefined)
        vmSsh.delete(`${id}#${vm.replica}`)
      }
      return
    }
    await d.deleteVm(vm, region, { signal })
    await forgetVmSsh(id, vm.replica)
  }

  async function converge(rec: CloudDeployment, n: number, signal: AbortSignal): Promise<DeploymentStatus> {
    const req = rec.request
    const id = req.deploymentId
    const region = regionOf(rec)
    const vms = await d.findVms(id, region, { signal })
    const current = byReplica(vms)
    // leftovers: older generations of a replica
    for (const vm of vms) if (current.get(vm.replica) !== vm && vm.state !== 'terminated') await d.deleteVm(vm, region, { signal })
    if (n > 0) {
      const firewallId = await d.ensureFirewall(
        {
          deploymentId: id,
          serviceId: req.serviceId,
          region,
          ports: req.spec.ports.length ? req.spec.ports : [8080],
          sshSourceCidr: p.sshSourceCidr,
          tags: ownershipTags({ operatorId: p.operatorId, deploymentId: id, serviceId: req.serviceId, role: 'firewall' }),
          name: resourceName(`bpo-${id}`, 'fw', 63),
        },
        { signal },
      )
      await Promise.all(Array.from({ length: n }, (_, i) => ensureReplica(rec, i, current.get(i), firewallId, signal)))
    }
    for (const [i, vm] of current) {
      if (i < n || vm.state === 'terminated') continue
      await retire(rec, vm, n === 0, signal)
    }
    if (n > 0) {
      for (const [i] of current) if (i >= n) await d.deleteVolumes?.(id, region, n, { signal })
      for (const [i] of current) if (i >= n) await forgetVmSsh(id, i)
    }
    return statusOf(rec, signal)
  }

  async function statusOf(rec: CloudDeployment, signal: AbortSignal, found?: CloudVm[]): Promise<DeploymentStatus> {
    const id = rec.request.deploymentId
    const region = regionOf(rec)
    const all = found ?? (await d.findVms(id, region, { signal }))
    const vms = byReplica(all)
    const wanted = rec.replicas
    if (wanted > 0 && !all.some((v) => v.state !== 'terminated')) {
      const lost = all.some((v) => v.interrupted)
      return { ...absent(id), replicasWanted: wanted, detail: lost ? 'every VM was interrupted (spot)' : 'no VM of this deployment exists' }
    }
    const endpoints: string[] = []
    const notes: string[] = []
    const usage: ReplicaUsage[] = []
    let usageAt = 0
    await Promise.all(
      Array.from({ length: wanted }, async (_, i) => {
        const vm = vms.get(i)
        if (!vm || vm.state === 'terminated') return void notes.push(`replica ${i}: no VM${vm?.interrupted ? ' (spot interruption)' : ''}`)
        if (vm.state !== 'running' || !vm.publicIp) return void notes.push(`replica ${i}: VM ${vm.id} is ${vm.state}`)
        try {
          const st = await handToSsh(rec, vm).status(id, { signal })
          // a VM runs one replica, numbered 0 by its own SSH provisioner: its counter is replica i's, and the VM's id
          // keeps the incarnation unique across VMs (pid:starttime repeats on VMs booted alike)
          for (const r of st.usage?.replicas ?? []) if (r.index === 0) usage.push({ index: i, id: `${vm.id}/${r.id}`, cpuSeconds: r.cpuSeconds })
          if (st.usage) usageAt = Math.max(usageAt, st.usage.at)
          if (st.replicasReady >= 1) endpoints.push(...st.endpoints)
          else notes.push(`replica ${i}: ${st.detail ?? 'not ready'}`)
        } catch (err) {
          if (err instanceof AbortedError) throw err
          notes.push(`replica ${i}: ${(err as { code?: string }).code ?? 'error'}`)
        }
      }),
    )
    endpoints.sort()
    return {
      deploymentId: id,
      exists: true,
      replicasWanted: wanted,
      replicasReady: endpoints.length,
      endpoints,
      healthy: endpoints.length === wanted,
      placement: `${d.provider}/${region}/${rec.request.offer!.instanceType}${rec.request.offer!.spot ? '/spot' : ''}`,
      ...(notes.length ? { detail: notes.sort().join('; ') } : {}),
      ...(usage.length && { usage: { at: usageAt, replicas: usage.sort((a, b) => a.index - b.index) } }),
    }
  }

  const absent = (deploymentId: string): DeploymentStatus => ({ deploymentId, exists: false, replicasWanted: 0, replicasReady: 0, endpoints: [], healthy: false })

  /** VMs of a deployment this daemon has no record of, looked up in every allowed region. */
  async function unrecorded(id: string, signal: AbortSignal): Promise<{ region: string; vms: CloudVm[] }[]> {
    const out: { region: string; vms: CloudVm[] }[] = []
    for (const region of regions) {
      const vms = (await d.findVms(id, region, { signal })).filter((v) => v.state !== 'terminated')
      if (vms.length) out.push({ region, vms })
    }
    return out
  }

  function notFound(id: string) {
    return new ProvisionError(`deployment ${id} is not known to the ${d.provider} target`, { code: 'DEPLOYMENT_NOT_FOUND', retryable: false })
  }

  const provisioner: CloudProvisioner = {
    id: d.provider,
    provider: d.provider,
    sourceKinds,

    provision(req, o) {
      return call('provision', o, provisionMs, (signal) =>
        locked(req.deploymentId ?? '', async () => {
          checkRequest(req)
          const id = req.deploymentId
          const others = store.all().filter(([k]) => k !== id).reduce((n, [, r]) => n + r.replicas, 0)
          if (others + req.spec.replicas > maxInstances) {
            throw failoverError(d.provider, { kind: 'quota', scope: 'provider' }, `${others + req.spec.replicas} VMs would exceed this operator's max_instances (${maxInstances})`)
          }
          const prev = store.get(id)
          if (prev && (prev.request.offer!.region !== req.offer!.region || prev.request.offer!.instanceType !== req.offer!.instanceType)) {
            throw new ProvisionError(`${id} already runs on ${prev.request.offer!.region}/${prev.request.offer!.instanceType}; destroy it before buying another offer`, { code: 'OFFER_REFUSED', reason: 'NO_FEASIBLE_OFFER', retryable: false })
          }
          // intent first: the request is on disk before any resource is created
          await store.update((all) => void (all[id] = { request: req, replicas: req.spec.replicas, generations: prev?.generations ?? {} }))
          return converge(store.get(id)!, req.spec.replicas, signal)
        }),
      )
    },

    status(deploymentId, o) {
      return call('status', o, otherMs, async (signal) => {
        assertDeploymentId(deploymentId)
        const rec = store.get(deploymentId)
        if (rec) return statusOf(rec, signal)
        const found = await unrecorded(deploymentId, signal)
        if (!found.length) return absent(deploymentId)
        const n = found.reduce((k, f) => k + f.vms.length, 0)
        return { ...absent(deploymentId), exists: true, replicasWanted: n, detail: `${n} VM(s) carry this deployment's tags but this daemon has no record of it (the orphan sweep removes them)` }
      })
    },

    scale(deploymentId, replicas, o) {
      return call('scale', o, provisionMs, (signal) =>
        locked(deploymentId, async () => {
          assertDeploymentId(deploymentId)
          assertReplicas(replicas)
          const rec = store.get(deploymentId)
          if (!rec) throw notFound(deploymentId)
          const others = store.all().filter(([k]) => k !== deploymentId).reduce((n, [, r]) => n + r.replicas, 0)
          if (others + replicas > maxInstances) throw failoverError(d.provider, { kind: 'quota', scope: 'provider' }, `${others + replicas} VMs would exceed this operator's max_instances (${maxInstances})`)
          await store.update((all) => void (all[deploymentId]!.replicas = replicas))
          return converge(store.get(deploymentId)!, replicas, signal)
        }),
      )
    },

    restart(deploymentId, o) {
      return call('restart', o, provisionMs, (signal) =>
        locked(deploymentId, async () => {
          assertDeploymentId(deploymentId)
          const rec = store.get(deploymentId)
          if (!rec) throw notFound(deploymentId)
          // replaces lost VMs, starts stopped ones, then restarts unhealthy replicas in place
          await converge(rec, rec.replicas, signal)
          const vms = byReplica(await d.findVms(deploymentId, regionOf(rec), { signal }))
          for (const [i, vm] of vms) if (i < rec.replicas && vm.state === 'running' && vm.publicIp) await handToSsh(rec, vm).restart(deploymentId, { signal })
          return statusOf(rec, signal)
        }),
      )
    },

    destroy(deploymentId, o) {
      return call('destroy', o, otherMs, (signal) =>
        locked(deploymentId, async () => {
          assertDeploymentId(deploymentId)
          const rec = store.get(deploymentId)
          const where = rec ? [regionOf(rec)] : regions
          for (const region of where) {
            const vms = await d.findVms(deploymentId, region, { signal })
            await Promise.all(vms.filter((v) => v.state !== 'terminated').map((vm) => d.deleteVm(vm, region, { signal })))
            await d.deleteVolumes?.(deploymentId, region, 0, { signal })
            await d.deleteFirewalls(deploymentId, region, { signal })
          }
          const replicas = new Set<number>()
          for (const key of vmSsh.keys()) if (key.startsWith(`${deploymentId}#`)) replicas.add(Number(key.slice(deploymentId.length + 1)))
          for (const g of Object.keys(rec?.generations ?? {})) replicas.add(Number(g))
          for (let i = 0; i < (rec?.replicas ?? 0); i++) replicas.add(i)
          for (const i of replicas) await forgetVmSsh(deploymentId, i)
          if (rec) await store.update((all) => void delete all[deploymentId])
          log.info({ deploymentId }, 'destroyed')
        }),
      )
    },

    listOwned(o) {
      return call('listOwned', o, otherMs, async (signal) => {
        const where = [...new Set([...regions, ...store.all().map(([, r]) => regionOf(r))])].sort()
        const out: OwnedResource[] = await d.listOwned(where, { signal })
        return out.sort((a, b) => (a.deploymentId + a.kind + a.id < b.deploymentId + b.kind + b.id ? -1 : 1))
      })
    },

    async close() {
      await Promise.all([...vmSsh.values()].map((s) => s.close().catch(() => undefined)))
      vmSsh.clear()
      await d.close()
    },
  }
  return provisioner
}
