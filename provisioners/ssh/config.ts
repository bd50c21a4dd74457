/** `[[providers.ssh.hosts]]`: the operator's own machines reached over SSH, each a fixed pool priced by `hourly_usd`. */
import { z } from 'zod'
import { decimal, name, nonNeg, portRange, posInt, posixUser, secretRef, uidRange } from '../../config/fields.js'

const host = z
  .strictObject({
    name,
    address: z.string().min(1),
    port: posInt('port').max(65535).default(22),
    user: z.string().regex(/^[a-z_][a-z0-9_-]*$/, { error: 'expected a POSIX user name' }),
    private_key: secretRef,
    /** Pinned host public key, "ssh-ed25519 AAAA..."; never trusted on first use. */
    host_key: z.string().regex(/^(ssh-ed25519|ecdsa-sha2-nistp\d+|ssh-rsa) [A-Za-z0-9+/=]+/, { error: 'expected a public host key such as "ssh-ed25519 AAAA..."' }),
    vcpu: nonNeg('vcpu'),
    memory_gib: nonNeg('memory in GiB'),
    storage_gib: nonNeg('storage in GiB'),
    hourly_usd: decimal('USD per hour'),
    region: z.string().min(1).default('own'),
    remote_root: z.string().startsWith('/').default('/var/lib/blueprint-operator'),
    /** Host ports handed to replicas, inclusive. */
    port_range: portRange.default([20000, 29999]),
    labels: z.record(z.string(), z.string()).default({}),
    /**
     * Run native workloads as this (existing, unprivileged) user, through setpriv; needs `user = "root"`.
     * The workload then cannot rewrite the host agent, the artifacts or its supervisor, nor leave its cgroups.
     */
    workload_user: posixUser.optional(),
    /** Run each native deployment as a uid of its own from this range (setpriv; needs `user = "root"`). */
    workload_uids: uidRange.optional(),
  })
  .superRefine((h, ctx) => {
    if (h.workload_user && h.workload_uids) ctx.addIssue({ code: 'custom', path: ['workload_uids'], message: 'workload_user and workload_uids exclude each other' })
    if (h.port_range[0] > h.port_range[1]) ctx.addIssue({ code: 'custom', path: ['port_range'], message: `got [${h.port_range.join(', ')}], expected [low, high]` })
  })
  .transform((h) => ({
    name: h.name,
    address: h.address,
    port: h.port,
    user: h.user,
    privateKey: h.private_key,
    hostKey: h.host_key,
    vcpu: h.vcpu,
    memoryGiB: h.memory_gib,
    storageGiB: h.storage_gib,
    hourlyUsd: h.hourly_usd,
    region: h.region,
    remoteRoot: h.remote_root,
    portRange: h.port_range,
    labels: h.labels,
    ...(h.workload_user && { workloadUser: h.workload_user }),
    ...(h.workload_uids && { workloadUids: h.workload_uids }),
  }))

/**
 * `[providers.ssh.endpoint]`: one stable endpoint per service, a TCP balancer in the daemon over the service's
 * replicas on its host. Without it, a service's endpoints are its replicas' own (they move when replicas change).
 */
const endpoint = z
  .strictObject({
    /** Address the balancers listen on (0.0.0.0 to be reached from outside). */
    listen: z.string().min(1).default('127.0.0.1'),
    /** Host name or address customers use to reach this daemon's machine; default the listen address. */
    public_host: z.string().min(1).optional(),
    /** The daemon machine's ports for the balancers, inclusive; keep it apart from the hosts' `port_range`. */
    port_range: portRange.default([30000, 30999]),
  })
  .superRefine((e, ctx) => {
    if (e.port_range[0] > e.port_range[1]) ctx.addIssue({ code: 'custom', path: ['port_range'], message: `got [${e.port_range.join(', ')}], expected [low, high]` })
    if (!e.public_host && (e.listen === '0.0.0.0' || e.listen === '::')) ctx.addIssue({ code: 'custom', path: ['public_host'], message: `listen = ${JSON.stringify(e.listen)} needs public_host: the address customers connect to` })
  })

export const sshSection = z.strictObject({ hosts: z.array(host), endpoint: endpoint.optional() }).superRefine((s, ctx) => {
  const seen = new Set<string>()
  for (const [i, h] of s.hosts.entries()) {
    if (seen.has(h.name)) ctx.addIssue({ code: 'custom', path: ['hosts', i, 'name'], message: `duplicate host name ${JSON.stringify(h.name)}` })
    seen.add(h.name)
  }
})

export type SshSection = z.output<typeof sshSection>
