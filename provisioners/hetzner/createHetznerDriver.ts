/**
 * The Hetzner Cloud driver of the cloud lifecycle (JSON API over undici). Hetzner bills a powered-off server, so
 * scale to zero deletes the server and keeps the replica's data on a Volume, attached again on scale-up. Servers,
 * volumes and firewalls are looked up by label before they are created (idempotent), and a name clash
 * (uniqueness_error) adopts the existing one.
 */
import type { Common } from '../../core/common.js'
import { sleep } from '../../core/retry.js'
import type { Secret } from '../../config/secrets.js'
import type { OwnedResource } from '../types.js'
import { TAG } from '../cloud/ownership.js'
import type { CloudDriver, CloudVm } from '../cloud/types.js'
import { createHetznerApi, hetznerErrorCode, type HetznerApi } from './hetznerApi.js'

type Server = { id: number; name: string; status: string; labels: Record<string, string>; volumes?: number[]; public_net?: { ipv4?: { ip?: string } | null } }
type Volume = { id: number; name: string; labels: Record<string, string>; server: number | null; location?: { name?: string } }
type Firewall = { id: number; name: string; labels: Record<string, string> }

export type HetznerDriverParameters = {
  operatorId: string
  token: Secret
  endpoint: string
  /** Image name or id. Default "debian-12". */
  image?: string
  apiTimeoutMs?: number
  /** How long deleting a volume or firewall may wait for a server being deleted, ms. Default 300_000. */
  detachTimeoutMs?: number
}

const STATE: Record<string, CloudVm['state']> = { running: 'running', off: 'stopped', stopping: 'stopping', deleting: 'terminated' }

/** Create the Hetzner driver. */
export function createHetznerDriver(commonIn: Common, p: HetznerDriverParameters): CloudDriver & { api: HetznerApi } {
  const log = commonIn.child('hetzner').logger
  const api = createHetznerApi({ endpoint: p.endpoint, token: p.token, timeoutMs: p.apiTimeoutMs })
  const selector = (labels: Record<string, string>) => `label_selector=${encodeURIComponent(Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(','))}`
  const mine = (extra: Record<string, string> = {}) => ({ [TAG.operator]: p.operatorId, ...extra })

  const toVm = (s: Server): CloudVm => ({
    id: String(s.id),
    deploymentId: s.labels[TAG.deployment] ?? '',
    replica: Number(s.labels[TAG.replica] ?? 0),
    generation: Number(s.labels[TAG.generation] ?? 0),
    state: STATE[s.status] ?? 'pending',
    ...(s.public_net?.ipv4?.ip ? { publicIp: s.public_net.ipv4.ip } : {}),
    ...(s.volumes?.[0] !== undefined ? { volumeId: String(s.volumes[0]) } : {}),
  })

  /** Retry `fn` while the API says the resource is still in use / locked (a server being deleted). */
  async function whileBusy(fn: () => Promise<unknown>, signal: AbortSignal) {
    const deadline = Date.now() + (p.detachTimeoutMs ?? 300_000)
    for (;;) {
      try {
        return await fn()
      } catch (err) {
        const code = hetznerErrorCode(err)
        if (code === 'not_found') return
        if ((code !== 'resource_in_use' && code !== 'locked' && code !== 'conflict') || Date.now() > deadline) throw err
        await sleep(500, signal)
      }
    }
  }

  return {
    provider: 'hetzner',
    zeroMode: 'delete-keep-volume',
    sshUser: 'root',
    api,
    remoteRoot: (vm) => (vm.volumeId ? `/mnt/HC_Volume_${vm.volumeId}/blueprint-operator` : '/var/lib/blueprint-operator'),

    async ensureFirewall(f, c) {
      const found = await api.list<Firewall>(`/firewalls?${selector(mine({ [TAG.deployment]: f.deploymentId, [TAG.role]: 'firewall' }))}`, 'firewalls', c.signal)
      if (found[0]) return String(found[0].id)
      const rules = [
        ...f.ports.map((port) => ({ direction: 'in', protocol: 'tcp', port: String(port), source_ips: ['0.0.0.0/0', '::/0'], description: 'service' })),
        { direction: 'in', protocol: 'tcp', port: '22', source_ips: [f.sshSourceCidr], description: 'blueprint-operator daemon' },
      ]
      try {
        const r = await api.call<{ firewall: Firewall }>('POST', '/firewalls', { name: f.name, labels: f.tags, rules }, c.signal)
        return String(r.firewall.id)
      } catch (err) {
        if (hetznerErrorCode(err) !== 'uniqueness_error') throw err
        const byName = await api.list<Firewall>(`/firewalls?name=${encodeURIComponent(f.name)}`, 'firewalls', c.signal)
        if (!byName[0] || byName[0].labels[TAG.operator] !== p.operatorId) throw err
        return String(byName[0].id)
      }
    },

    async deleteFirewalls(deploymentId, _region, c) {
      const found = await api.list<Firewall>(`/firewalls?${selector(mine({ [TAG.deployment]: deploymentId, [TAG.role]: 'firewall' }))}`, 'firewalls', c.signal)
      for (const fw of found) await whileBusy(() => api.call('DELETE', `/firewalls/${fw.id}`, undefined, c.signal), c.signal)
    },

    async findVms(deploymentId, _region, c) {
      const found = await api.list<Server>(`/servers?${selector(mine({ [TAG.deployment]: deploymentId, [TAG.role]: 'vm' }))}`, 'servers', c.signal)
      return found.map(toVm)
    },

    async getVm(id, _region, c) {
      try {
        return toVm((await api.call<{ server: Server }>('GET', `/servers/${encodeURIComponent(id)}`, undefined, c.signal)).server)
      } catch (err) {
        if (hetznerErrorCode(err) === 'not_found') return undefined
        throw err
      }
    },

    async createVm(v, c) {
      // label first: an earlier attempt (or a crashed daemon) may have created it already
      const labels = mine({ [TAG.deployment]: v.deploymentId, [TAG.role]: 'vm', [TAG.replica]: String(v.replica), [TAG.generation]: String(v.generation) })
      const existing = await api.list<Server>(`/servers?${selector(labels)}`, 'servers', c.signal)
      if (existing[0]) return toVm(existing[0])
      const body = {
        name: v.name,
        server_type: v.offer.instanceType,
        image: p.image ?? 'debian-12',
        location: v.offer.region,
        user_data: v.userData,
        labels: v.tags,
        firewalls: [{ firewall: Number(v.firewallId) }],
        ...(v.volumeId ? { volumes: [Number(v.volumeId)], automount: true } : {}),
        start_after_create: true,
        public_net: { enable_ipv4: true, enable_ipv6: false },
      }
      try {
        return toVm((await api.call<{ server: Server }>('POST', '/servers', body, c.signal)).server)
      } catch (err) {
        if (hetznerErrorCode(err) !== 'uniqueness_error') throw err
        const byName = await api.list<Server>(`/servers?name=${encodeURIComponent(v.name)}`, 'servers', c.signal)
        if (!byName[0] || byName[0].labels[TAG.operator] !== p.operatorId) throw err
        return toVm(byName[0])
      }
    },

    async startVm(vm, _region, c) {
      await api.call('POST', `/servers/${vm.id}/actions/poweron`, undefined, c.signal)
    },

    async stopVm(vm, _region, c) {
      await api.call('POST', `/servers/${vm.id}/actions/shutdown`, undefined, c.signal)
    },

    async deleteVm(vm, _region, c) {
      try {
        await api.call('DELETE', `/servers/${vm.id}`, undefined, c.signal)
      } catch (err) {
        if (hetznerErrorCode(err) !== 'not_found') throw err
      }
    },

    async ensureVolume(v, c) {
      const labels = mine({ [TAG.deployment]: v.deploymentId, [TAG.role]: 'volume', [TAG.replica]: String(v.replica) })
      const found = await api.list<Volume>(`/volumes?${selector(labels)}`, 'volumes', c.signal)
      if (found[0]) return String(found[0].id)
      try {
        const r = await api.call<{ volume: Volume }>('POST', '/volumes', { name: v.name, size: v.sizeGiB, location: v.region, labels: v.tags, format: 'ext4', automount: false }, c.signal)
        return String(r.volume.id)
      } catch (err) {
        if (hetznerErrorCode(err) !== 'uniqueness_error') throw err
        const byName = await api.list<Volume>(`/volumes?name=${encodeURIComponent(v.name)}`, 'volumes', c.signal)
        if (!byName[0] || byName[0].labels[TAG.operator] !== p.operatorId) throw err
        return String(byName[0].id)
      }
    },

    async deleteVolumes(deploymentId, _region, fromReplica, c) {
      const found = await api.list<Volume>(`/volumes?${selector(mine({ [TAG.deployment]: deploymentId, [TAG.role]: 'volume' }))}`, 'volumes', c.signal)
      for (const vol of found) {
        if (Number(vol.labels[TAG.replica] ?? 0) < fromReplica) continue
        log.info({ deploymentId, volume: vol.id }, 'deleting a data volume')
        await whileBusy(() => api.call('DELETE', `/volumes/${vol.id}`, undefined, c.signal), c.signal)
      }
    },

    async listOwned(_regions, c) {
      const out: OwnedResource[] = []
      const q = selector(mine())
      for (const s of await api.list<Server>(`/servers?${q}`, 'servers', c.signal)) if (s.status !== 'deleting') out.push({ deploymentId: s.labels[TAG.deployment] ?? '', kind: 'server', id: String(s.id), placement: 'hetzner' })
      for (const v of await api.list<Volume>(`/volumes?${q}`, 'volumes', c.signal)) out.push({ deploymentId: v.labels[TAG.deployment] ?? '', kind: 'volume', id: String(v.id), placement: `hetzner/${v.location?.name ?? ''}` })
      for (const f of await api.list<Firewall>(`/firewalls?${q}`, 'firewalls', c.signal)) out.push({ deploymentId: f.labels[TAG.deployment] ?? '', kind: 'firewall', id: String(f.id), placement: 'hetzner' })
      return out
    },

    async close() {},
  }
}
