/**
 * The AWS EC2 driver of the cloud lifecycle, over the unmodified @aws-sdk/client-ec2: one client per region,
 * RunInstances idempotent on a ClientToken, a security group per deployment, scale to zero by StopInstances (the
 * EBS root disk keeps the data), spot through InstanceMarketOptions, images by the documented Debian 12 rule.
 */
import {
  AuthorizeSecurityGroupIngressCommand,
  CreateSecurityGroupCommand,
  DeleteSecurityGroupCommand,
  DescribeImagesCommand,
  DescribeInstancesCommand,
  DescribeSecurityGroupsCommand,
  DescribeVolumesCommand,
  EC2Client,
  RunInstancesCommand,
  StartInstancesCommand,
  StopInstancesCommand,
  TerminateInstancesCommand,
  type Filter,
  type Instance,
  type Tag,
} from '@aws-sdk/client-ec2'
import type { Common } from '../../core/common.js'
import { sleep } from '../../core/retry.js'
import type { Secret } from '../../config/secrets.js'
import { ProvisionError } from '../errors.js'
import type { OwnedResource } from '../types.js'
import { callApi } from '../cloud/callApi.js'
import { TAG } from '../cloud/ownership.js'
import type { CloudDriver, CloudVm, DriverCall } from '../cloud/types.js'
import { classifyEc2Error, ec2ErrorCode } from './classifyEc2Error.js'

/** Debian's AWS account, owner of the official Debian AMIs. */
export const DEBIAN_AMI_OWNER = '136693071363'

export type Ec2DriverParameters = {
  operatorId: string
  accessKeyId: Secret
  secretAccessKey: Secret
  /** Endpoint override (tests); default the regional endpoint. */
  endpoint?: string
  /** AMI per region overriding the Debian 12 rule. */
  images?: Record<string, string>
  /** Per API call, ms. Default 30_000. */
  apiTimeoutMs?: number
  /** How long a security group may stay in use by terminating instances before its deletion fails, ms. Default 300_000. */
  sgDeleteTimeoutMs?: number
}

const STATE: Record<string, CloudVm['state']> = { pending: 'pending', running: 'running', stopping: 'stopping', stopped: 'stopped', 'shutting-down': 'terminated', terminated: 'terminated' }

/** Whether an instance type runs on arm64 (Graviton families: a "g" after the generation digit, e.g. t4g, c7g, m6gd). */
export function ec2Arch(instanceType: string): 'arm64' | 'amd64' {
  const family = instanceType.split('.')[0] ?? ''
  return /^[a-z]+\d+g/.test(family) || family === 'a1' ? 'arm64' : 'amd64'
}

/** Create the EC2 driver. */
export function createEc2Driver(commonIn: Common, p: Ec2DriverParameters): CloudDriver & { imageFor(region: string, instanceType: string, c: DriverCall): Promise<string>; clientFor(region: string): EC2Client } {
  const common = commonIn.child('aws-ec2')
  const log = common.logger
  const clients = new Map<string, EC2Client>()
  const images = new Map<string, Promise<string>>()
  const apiTimeoutMs = p.apiTimeoutMs ?? 30_000

  function clientFor(region: string): EC2Client {
    let c = clients.get(region)
    if (!c) {
      c = new EC2Client({
        region,
        ...(p.endpoint ? { endpoint: p.endpoint } : {}),
        // resolved only when a request is signed; never logged (Secret prints as its reference)
        credentials: async () => ({ accessKeyId: p.accessKeyId.reveal(), secretAccessKey: p.secretAccessKey.reveal() }),
        // retries with backoff are ours (callApi), decided by error class
        maxAttempts: 1,
      })
      clients.set(region, c)
    }
    return c
  }

  /** One EC2 call with timeout, abort, backoff on RequestLimitExceeded / 5xx, and classified errors. */
  function ec2<T>(region: string, what: string, c: DriverCall, send: (client: EC2Client, abortSignal: AbortSignal) => Promise<T>): Promise<T> {
    return callApi(
      `ec2 ${what}`,
      async (signal) => {
        try {
          return await send(clientFor(region), signal)
        } catch (err) {
          throw classifyEc2Error(err, what)
        }
      },
      { signal: c.signal, timeoutMs: apiTimeoutMs },
    )
  }

  const tagFilters = (tags: Record<string, string>): Filter[] => Object.entries(tags).map(([k, v]) => ({ Name: `tag:${k}`, Values: [v] }))
  const tagsOf = (tags: Tag[] | undefined) => Object.fromEntries((tags ?? []).map((t) => [t.Key ?? '', t.Value ?? '']))
  const asTags = (tags: Record<string, string>): Tag[] => Object.entries(tags).map(([Key, Value]) => ({ Key, Value }))

  function toVm(i: Instance): CloudVm | undefined {
    const t = tagsOf(i.Tags)
    if (t[TAG.operator] !== p.operatorId || !i.InstanceId) return undefined
    const state = STATE[i.State?.Name ?? ''] ?? 'pending'
    return {
      id: i.InstanceId,
      deploymentId: t[TAG.deployment] ?? '',
      replica: Number(t[TAG.replica] ?? 0),
      generation: Number(t[TAG.generation] ?? 0),
      state,
      ...(i.PublicIpAddress ? { publicIp: i.PublicIpAddress } : {}),
      ...(state === 'terminated' && i.StateReason?.Code === 'Server.SpotInstanceTermination' ? { interrupted: true } : {}),
    }
  }

  async function describeInstances(region: string, filters: Filter[], c: DriverCall, ids?: string[]): Promise<Instance[]> {
    const out: Instance[] = []
    let token: string | undefined
    do {
      const r = await ec2(region, 'DescribeInstances', c, (client, abortSignal) =>
        client.send(new DescribeInstancesCommand({ ...(ids ? { InstanceIds: ids } : { Filters: filters, MaxResults: 100 }), NextToken: token }), { abortSignal }),
      )
      for (const res of r.Reservations ?? []) out.push(...(res.Instances ?? []))
      token = r.NextToken
    } while (token)
    return out
  }

  async function imageFor(region: string, instanceType: string, c: DriverCall): Promise<string> {
    const override = p.images?.[region]
    if (override) return override
    const arch = ec2Arch(instanceType)
    const key = `${region}/${arch}`
    let cached = images.get(key)
    if (!cached) {
      cached = (async () => {
        const r = await ec2(region, 'DescribeImages', c, (client, abortSignal) =>
          client.send(
            new DescribeImagesCommand({
              Owners: [DEBIAN_AMI_OWNER],
              Filters: [
                { Name: 'name', Values: [`debian-12-${arch}-*`] },
                { Name: 'state', Values: ['available'] },
                { Name: 'architecture', Values: [arch === 'arm64' ? 'arm64' : 'x86_64'] },
              ],
            }),
            { abortSignal },
          ),
        )
        const newest = (r.Images ?? []).filter((i) => i.ImageId && i.CreationDate).sort((a, b) => (a.CreationDate! < b.CreationDate! ? 1 : -1))[0]
        if (!newest) throw new ProvisionError(`aws: no Debian 12 ${arch} AMI of account ${DEBIAN_AMI_OWNER} in ${region}`, { code: 'CLOUD_IMAGE_NOT_FOUND', retryable: false, meta: { region, arch } })
        log.info({ region, arch, image: newest.ImageId, name: newest.Name }, 'using the newest Debian 12 AMI')
        return newest.ImageId!
      })()
      images.set(key, cached)
      // a failed lookup is not cached
      cached.catch(() => images.delete(key))
    }
    return cached
  }

  async function ownedSecurityGroups(region: string, filters: Filter[], c: DriverCall) {
    const out: { id: string; tags: Record<string, string> }[] = []
    let token: string | undefined
    do {
      const r = await ec2(region, 'DescribeSecurityGroups', c, (client, abortSignal) => client.send(new DescribeSecurityGroupsCommand({ Filters: filters, NextToken: token, MaxResults: 100 }), { abortSignal }))
      for (const g of r.SecurityGroups ?? []) if (g.GroupId) out.push({ id: g.GroupId, tags: tagsOf(g.Tags) })
      token = r.NextToken
    } while (token)
    return out
  }

  const driver = {
    provider: 'aws',
    zeroMode: 'stop' as const,
    sshUser: 'root',
    remoteRoot: () => '/var/lib/blueprint-operator',
    imageFor,
    clientFor,

    async ensureFirewall(f, c) {
      const found = await ownedSecurityGroups(f.region, tagFilters({ [TAG.operator]: p.operatorId, [TAG.deployment]: f.deploymentId, [TAG.role]: 'firewall' }), c)
      let groupId = found[0]?.id
      if (!groupId) {
        try {
          const r = await ec2(f.region, 'CreateSecurityGroup', c, (client, abortSignal) =>
            client.send(
              new CreateSecurityGroupCommand({
                GroupName: f.name,
                Description: `blueprint-operator ${f.deploymentId}: service ports and SSH from the operator`,
                TagSpecifications: [{ ResourceType: 'security-group', Tags: asTags(f.tags) }],
              }),
              { abortSignal },
            ),
          )
          groupId = r.GroupId!
        } catch (err) {
          // created by an earlier attempt that died before it could read the answer
          if (ec2ErrorCode((err as { cause?: unknown }).cause) !== 'InvalidGroup.Duplicate') throw err
          const again = await ownedSecurityGroups(f.region, [{ Name: 'group-name', Values: [f.name] }, ...tagFilters({ [TAG.operator]: p.operatorId })], c)
          if (!again[0]) throw err
          groupId = again[0].id
        }
        const perms = [
          ...f.ports.map((port) => ({ IpProtocol: 'tcp', FromPort: port, ToPort: port, IpRanges: [{ CidrIp: '0.0.0.0/0', Description: 'service' }] })),
          { IpProtocol: 'tcp', FromPort: 22, ToPort: 22, IpRanges: [{ CidrIp: f.sshSourceCidr, Description: 'blueprint-operator daemon' }] },
        ]
        try {
          await ec2(f.region, 'AuthorizeSecurityGroupIngress', c, (client, abortSignal) => client.send(new AuthorizeSecurityGroupIngressCommand({ GroupId: groupId, IpPermissions: perms }), { abortSignal }))
        } catch (err) {
          if (ec2ErrorCode((err as { cause?: unknown }).cause) !== 'InvalidPermission.Duplicate') throw err
        }
      }
      return groupId
    },

    async deleteFirewalls(deploymentId, region, c) {
      const groups = await ownedSecurityGroups(region, tagFilters({ [TAG.operator]: p.operatorId, [TAG.deployment]: deploymentId, [TAG.role]: 'firewall' }), c)
      for (const g of groups) {
        const deadline = Date.now() + (p.sgDeleteTimeoutMs ?? 300_000)
        for (;;) {
          try {
            await ec2(region, 'DeleteSecurityGroup', c, (client, abortSignal) => client.send(new DeleteSecurityGroupCommand({ GroupId: g.id }), { abortSignal }))
            break
          } catch (err) {
            const code = ec2ErrorCode((err as { cause?: unknown }).cause)
            if (code === 'InvalidGroup.NotFound') break
            // still referenced by instances that are shutting down
            if (code !== 'DependencyViolation' || Date.now() > deadline) throw err
            await sleep(1_000, c.signal)
          }
        }
      }
    },

    async findVms(deploymentId, region, c) {
      const list = await describeInstances(region, tagFilters({ [TAG.operator]: p.operatorId, [TAG.deployment]: deploymentId, [TAG.role]: 'vm' }), c)
      return list.map(toVm).filter((v): v is CloudVm => v !== undefined && v.deploymentId === deploymentId)
    },

    async getVm(id, region, c) {
      try {
        const list = await describeInstances(region, [], c, [id])
        return list.map(toVm).find((v) => v?.id === id)
      } catch (err) {
        // eventual consistency: a new instance is unknown to Describe for a moment
        if (ec2ErrorCode((err as { cause?: unknown }).cause) === 'InvalidInstanceID.NotFound') return undefined
        throw err
      }
    },

    async createVm(v, c) {
      const region = v.offer.region
      const image = await imageFor(region, v.offer.instanceType, c)
      const r = await ec2(region, 'RunInstances', c, (client, abortSignal) =>
        client.send(
          new RunInstancesCommand({
            ImageId: image,
            InstanceType: v.offer.instanceType as never,
            MinCount: 1,
            MaxCount: 1,
            ClientToken: v.idempotencyToken,
            UserData: Buffer.from(v.userData).toString('base64'),
            SecurityGroupIds: [v.firewallId],
            BlockDeviceMappings: [{ DeviceName: '/dev/xvda', Ebs: { VolumeSize: v.diskGiB, VolumeType: 'gp3', DeleteOnTermination: true } }],
            TagSpecifications: [
              { ResourceType: 'instance', Tags: asTags({ Name: v.name, ...v.tags }) },
              { ResourceType: 'volume', Tags: asTags({ ...v.tags, [TAG.role]: 'volume' }) },
            ],
            ...(v.offer.spot ? { InstanceMarketOptions: { MarketType: 'spot', SpotOptions: { SpotInstanceType: 'one-time', InstanceInterruptionBehavior: 'terminate' } } } : {}),
          }),
          { abortSignal },
        ),
      )
      const inst = r.Instances?.[0]
      const vm = inst && toVm(inst)
      if (!vm) throw new ProvisionError('aws: RunInstances answered without an instance', { code: 'CLOUD_API_ERROR', retryable: true })
      return vm
    },

    async startVm(vm, region, c) {
      await ec2(region, 'StartInstances', c, (client, abortSignal) => client.send(new StartInstancesCommand({ InstanceIds: [vm.id] }), { abortSignal }))
    },

    async stopVm(vm, region, c) {
      const [inst] = await describeInstances(region, [], c, [vm.id])
      if (inst?.InstanceLifecycle === 'spot') {
        // a one-time spot instance cannot be stopped: it is terminated, its root disk with it
        log.warn({ vm: vm.id }, 'spot instance: scale to zero terminates it (its data is not kept)')
        await driver.deleteVm(vm, region, c)
        return
      }
      await ec2(region, 'StopInstances', c, (client, abortSignal) => client.send(new StopInstancesCommand({ InstanceIds: [vm.id] }), { abortSignal }))
    },

    async deleteVm(vm, region, c) {
      try {
        await ec2(region, 'TerminateInstances', c, (client, abortSignal) => client.send(new TerminateInstancesCommand({ InstanceIds: [vm.id] }), { abortSignal }))
      } catch (err) {
        if (ec2ErrorCode((err as { cause?: unknown }).cause) !== 'InvalidInstanceID.NotFound') throw err
      }
    },

    async listOwned(regions, c) {
      const out: OwnedResource[] = []
      for (const region of regions) {
        const mine = tagFilters({ [TAG.operator]: p.operatorId })
        for (const i of await describeInstances(region, mine, c)) {
          const vm = toVm(i)
          if (vm && vm.state !== 'terminated') out.push({ deploymentId: vm.deploymentId, kind: 'instance', id: vm.id, placement: `aws/${region}` })
        }
        let token: string | undefined
        do {
          const r = await ec2(region, 'DescribeVolumes', c, (client, abortSignal) => client.send(new DescribeVolumesCommand({ Filters: mine, NextToken: token, MaxResults: 500 }), { abortSignal }))
          for (const v of r.Volumes ?? []) {
            const t = tagsOf(v.Tags)
            if (t[TAG.operator] === p.operatorId && v.VolumeId && v.State !== 'deleted' && v.State !== 'deleting') out.push({ deploymentId: t[TAG.deployment] ?? '', kind: 'volume', id: v.VolumeId, placement: `aws/${region}` })
          }
          token = r.NextToken
        } while (token)
        for (const g of await ownedSecurityGroups(region, mine, c)) {
          if (g.tags[TAG.operator] === p.operatorId) out.push({ deploymentId: g.tags[TAG.deployment] ?? '', kind: 'security-group', id: g.id, placement: `aws/${region}` })
        }
      }
      return out
    },

    async close() {
      for (const c of clients.values()) c.destroy()
      clients.clear()
    },
  } satisfies CloudDriver & Record<string, unknown>
  return driver
}
