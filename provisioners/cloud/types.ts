/**
 * The contract between the shared cloud machine lifecycle (createCloudProvisioner) and one provider's driver
 * (aws-ec2, hetzner; later digitalocean, vultr, gcp, azure). A driver speaks its provider's API and nothing else;
 * the lifecycle owns replicas, host keys, SSH, scale to zero and status.
 */
import type { CallOptions, DeploymentRequest, OwnedResource } from '../types.js'

/** The offer a request buys (DeploymentRequest.offer, required by cloud targets). */
export type CloudOffer = NonNullable<DeploymentRequest['offer']>

/** A VM as the lifecycle sees it, normalized across providers. */
export type CloudVm = {
  /** The provider's id (instance id, server id). */
  id: string
  deploymentId: string
  replica: number
  generation: number
  state: 'pending' | 'running' | 'stopping' | 'stopped' | 'terminated'
  /** Public IPv4 once it has one. */
  publicIp?: string
  /** True when the provider took it away (spot interruption). */
  interrupted?: boolean
  /** The data volume attached to it, when the driver keeps data on a volume. */
  volumeId?: string
}

/** Everything a driver needs to create one VM. */
export type VmCreate = {
  deploymentId: string
  serviceId: string
  replica: number
  generation: number
  offer: CloudOffer
  /** The cloud-init user data (holds the VM's private host key: never logged). */
  userData: string
  firewallId: string
  /** Data volume to attach (drivers with zeroMode "delete-keep-volume"). */
  volumeId?: string
  tags: Record<string, string>
  /** Unique, DNS-safe name of the VM. */
  name: string
  /** A stable idempotency token (EC2 ClientToken), derived from operator, deployment, replica and generation. */
  idempotencyToken: string
  /** Root disk size, GiB (spec.storageGiB, at least the image's). */
  diskGiB: number
}

export type FirewallCreate = {
  deploymentId: string
  serviceId: string
  region: string
  /** TCP ports open to everyone (the service's ports). */
  ports: number[]
  /** CIDR allowed to reach SSH (22/tcp): the daemon's address. */
  sshSourceCidr: string
  tags: Record<string, string>
  name: string
}

export type DriverCall = { signal: AbortSignal }

export type CloudDriver = {
  /** Provider id as in offers and the TOML: "aws", "hetzner". */
  readonly provider: string
  /**
   * How scale(0) stops the compute bill: "stop" (the provider does not bill a stopped VM; its disk is kept and billed),
   * or "delete-keep-volume" (a powered-off VM is still billed: delete it, keep the data on a volume).
   */
  readonly zeroMode: 'stop' | 'delete-keep-volume'
  /** Login user the user data authorizes (root). */
  readonly sshUser: string
  /** Where the SSH host agent keeps deployments on this VM (on the volume for "delete-keep-volume"). */
  remoteRoot(vm: CloudVm): string
  /** Find or create the deployment's firewall / security group; returns its id. */
  ensureFirewall(f: FirewallCreate, c: DriverCall): Promise<string>
  /** Delete the deployment's firewalls / security groups (none left is success). */
  deleteFirewalls(deploymentId: string, region: string, c: DriverCall): Promise<void>
  /** The deployment's VMs in `region` by ownership tags (terminated ones only while interrupted is worth reporting). */
  findVms(deploymentId: string, region: string, c: DriverCall): Promise<CloudVm[]>
  /** Create one VM (idempotent on `idempotencyToken` / its name); returns it, possibly still pending. */
  createVm(v: VmCreate, c: DriverCall): Promise<CloudVm>
  /** Read one VM by id; undefined when the provider does not know it (yet: eventual consistency). */
  getVm(id: string, region: string, c: DriverCall): Promise<CloudVm | undefined>
  startVm(vm: CloudVm, region: string, c: DriverCall): Promise<void>
  stopVm(vm: CloudVm, region: string, c: DriverCall): Promise<void>
  /** Delete / terminate; already gone is success. */
  deleteVm(vm: CloudVm, region: string, c: DriverCall): Promise<void>
  /** Find or create the data volume of one replica ("delete-keep-volume" drivers). */
  ensureVolume?(p: { deploymentId: string; serviceId: string; replica: number; sizeGiB: number; region: string; tags: Record<string, string>; name: string }, c: DriverCall): Promise<string>
  /** Delete the deployment's volumes of replicas >= `fromReplica` (all when 0); already gone is success. */
  deleteVolumes?(deploymentId: string, region: string, fromReplica: number, c: DriverCall): Promise<void>
  /** Every VM, volume and firewall carrying this operator's tag, in the given regions. */
  listOwned(regions: string[], c: DriverCall): Promise<OwnedResource[]>
  close(): Promise<void>
}

export type { CallOptions }
