/**
 * A fake EC2 Query API (POST /, form body, XML answers in the 2016-11-15 shapes of ../shared/fixtures/aws-ec2/) for
 * the unmodified @aws-sdk/client-ec2. Its "running" instances are real SSH hosts (test/fakes/fake-vm.ts) booted from
 * the user data; stop keeps the root disk, terminate deletes it. Models ClientToken idempotency (and
 * IdempotentParameterMismatch), tag filters, pagination, eventual consistency (a new instance is unknown to
 * DescribeInstances for `describeLagMs`), spot interruption, and injected faults (the recorded error bodies).
 */
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startFakeVm, type FakeVm } from './fake-vm.js'

const FIXTURES = new URL('../../../shared/fixtures/aws-ec2/', import.meta.url)
const fixture = (name: string) => readFileSync(new URL(name, FIXTURES), 'utf8')
const NS = 'http://ec2.amazonaws.com/doc/2016-11-15/'
const STATE_CODE: Record<string, number> = { pending: 0, running: 16, 'shutting-down': 32, terminated: 48, stopping: 64, stopped: 80 }

export type FakeInstance = {
  id: string
  region: string
  reservationId: string
  state: 'pending' | 'running' | 'shutting-down' | 'terminated' | 'stopping' | 'stopped'
  instanceType: string
  imageId: string
  clientToken: string
  fingerprint: string
  userData: string
  tags: Record<string, string>
  securityGroups: string[]
  spot: boolean
  stateReason?: string
  visibleAt: number
  volumeId: string
  volumeTags: Record<string, string>
  rootDisk: string
  vm?: FakeVm
  ip?: string
}

export type FakeSecurityGroup = { id: string; region: string; name: string; tags: Record<string, string>; rules: { from: number; to: number; cidr: string }[] }

export type Ec2Fault = { code: string; status?: number; times?: number; match?: (params: URLSearchParams) => boolean }

export type FakeEc2 = {
  url: string
  instances: Map<string, FakeInstance>
  securityGroups: Map<string, FakeSecurityGroup>
  /** Every call: region and action. */
  calls: { region: string; action: string }[]
  /** Answer the next call(s) of `action` with an error (recorded body where one exists). */
  fail(action: string, f: Ec2Fault): void
  /** Spot interruption: the instance is terminated by "AWS". */
  interrupt(instanceId: string): Promise<void>
  /** Spot price history served per instance type: [zone, price][]. */
  spotPrices: Map<string, [string, string][]>
  /** The public images DescribeImages searches (a test may remove some). */
  images: { id: string; name: string; created: string; arch: string; owner: string }[]
  /** Instances not terminated. */
  live(): FakeInstance[]
  /** Volumes not deleted. */
  volumes(): { id: string; tags: Record<string, string> }[]
  stop(): Promise<void>
}

export type StartFakeEc2Parameters = {
  accessKeyId: string
  /** How long a new instance stays unknown to DescribeInstances, ms. Default 300. */
  describeLagMs?: number
  /** Pending -> running delay before the VM boots, ms. Default 100. */
  bootDelayMs?: number
  /** Largest page DescribeInstances/DescribeSecurityGroups return (pagination). Default 2. */
  pageSize?: number
}

/** Start the fake on 127.0.0.1. */
export async function startFakeEc2(p: StartFakeEc2Parameters): Promise<FakeEc2> {
  const dir = await mkdtemp(join(tmpdir(), 'bpo-fake-ec2-'))
  const instances = new Map<string, FakeInstance>()
  const securityGroups = new Map<string, FakeSecurityGroup>()
  const deletedVolumes = new Set<string>()
  const faults = new Map<string, Ec2Fault[]>()
  const calls: { region: string; action: string }[] = []
  const spotPrices = new Map<string, [string, string][]>()
  const lag = p.describeLagMs ?? 300
  const bootDelay = p.bootDelayMs ?? 100
  const pageSize = p.pageSize ?? 2
  const hex = (n: number) => randomBytes(n).toString('hex')
  const pending = new Set<Promise<unknown>>()
  const track = <T>(x: Promise<T>) => {
    pending.add(x)
    void x.finally(() => pending.delete(x)).catch(() => undefined)
    return x
  }
  const images = [
    { id: 'ami-0d1e2b3a4c5d6e7f0', name: 'debian-12-amd64-20260601-1234', created: '2026-06-01T10:00:00.000Z', arch: 'x86_64', owner: '136693071363' },
    { id: 'ami-0a1b2c3d4e5f60718', name: 'debian-12-amd64-20261101-1500', created: '2026-11-01T10:00:00.000Z', arch: 'x86_64', owner: '136693071363' },
    { id: 'ami-0f0e0d0c0b0a09080', name: 'debian-12-arm64-20261101-1500', created: '2026-11-01T10:00:00.000Z', arch: 'arm64', owner: '136693071363' },
    { id: 'ami-0999999999999999a', name: 'debian-12-amd64-20261201-evil', created: '2026-12-01T10:00:00.000Z', arch: 'x86_64', owner: '999999999999' },
  ]

  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
  const tagSet = (tags: Record<string, string>) => `<tagSet>${Object.entries(tags).map(([k, v]) => `<item><key>${esc(k)}</key><value>${esc(v)}</value></item>`).join('')}</tagSet>`
  const ok = (action: string, body: string) => `<?xml version="1.0" encoding="UTF-8"?>\n<${action}Response xmlns="${NS}"><requestId>${crypto.randomUUID()}</requestId>${body}</${action}Response>`
  const RECORDED: Record<string, string> = {
    InsufficientInstanceCapacity: 'error-insufficient-instance-capacity.xml',
    IdempotentParameterMismatch: 'error-idempotent-parameter-mismatch.xml',
    UnauthorizedOperation: 'error-unauthorized-operation.xml',
    'InvalidInstanceID.NotFound': 'error-invalid-instance-id-notfound.xml',
  }
  const errorBody = (code: string, message: string) =>
    RECORDED[code] ? fixture(RECORDED[code]) : `<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>${esc(code)}</Code><Message>${esc(message)}</Message></Error></Errors><RequestID>${crypto.randomUUID()}</RequestID></Response>`
  class Ec2Err extends Error {
    constructor(
      readonly code: string,
      readonly status: number,
      message = code,
    ) {
      super(message)
    }
  }
  const DEFAULT_STATUS: Record<string, number> = { InsufficientInstanceCapacity: 500, UnauthorizedOperation: 403, AuthFailure: 401, RequestLimitExceeded: 503 }

  /** `prefix.N[.rest]` params as a list of maps of `rest`. */
  function list(q: URLSearchParams, prefix: string): Map<string, string>[] {
    const out: Map<string, string>[] = []
    for (const [k, v] of q) {
      if (!k.startsWith(`${prefix}.`)) continue
      const m = /^(\d+)(?:\.(.*))?$/.exec(k.slice(prefix.length + 1))
      if (!m) continue
      const i = Number(m[1]) - 1
      out[i] ??= new Map()
      out[i]!.set(m[2] ?? '', v)
    }
    return out.filter(Boolean)
  }
  function tagsFrom(q: URLSearchParams, resourceType: string): Record<string, string> {
    const spec = list(q, 'TagSpecification').find((s) => s.get('ResourceType') === resourceType)
    if (!spec) return {}
    return Object.fromEntries(list(new URLSearchParams([...spec]), 'Tag').map((t) => [t.get('Key') ?? '', t.get('Value') ?? '']))
  }
  function filtersOf(q: URLSearchParams): { name: string; values: string[] }[] {
    return list(q, 'Filter').map((f) => ({ name: f.get('Name') ?? '', values: [...f].filter(([k]) => k.startsWith('Value.')).map(([, v]) => v) }))
  }
  function matchTags(tags: Record<string, string>, filters: { name: string; values: string[] }[]) {
    return filters.filter((f) => f.name.startsWith('tag:')).every((f) => f.values.includes(tags[f.name.slice(4)] ?? '\0'))
  }
  function page<T>(items: T[], q: URLSearchParams): { items: T[]; next: string } {
    const start = Number(q.get('NextToken') ?? 0) || 0
    const max = Math.min(Number(q.get('MaxResults') ?? pageSize) || pageSize, pageSize)
    const slice = items.slice(start, start + max)
    return { items: slice, next: start + max < items.length ? `<nextToken>${start + max}</nextToken>` : '' }
  }

  function instanceXml(i: FakeInstance) {
    return `<item><instanceId>${i.id}</instanceId><imageId>${i.imageId}</imageId><instanceState><code>${STATE_CODE[i.state]}</code><name>${i.state}</name></instanceState><privateDnsName/><dnsName/><instanceType>${esc(i.instanceType)}</instanceType><launchTime>2026-12-04T10:00:00.000Z</launchTime><placement><availabilityZone>${i.region}a</availabilityZone><tenancy>default</tenancy></placement>${i.ip ? `<ipAddress>${i.ip}</ipAddress>` : ''}<groupSet>${i.securityGroups.map((g) => `<item><groupId>${g}</groupId></item>`).join('')}</groupSet>${i.spot ? '<instanceLifecycle>spot</instanceLifecycle>' : ''}${i.stateReason ? `<stateReason><code>${i.stateReason}</code><message>${i.stateReason}</message></stateReason>` : ''}<clientToken>${esc(i.clientToken)}</clientToken>${tagSet(i.tags)}</item>`
  }
  const reservationXml = (group: FakeInstance[]) => `<item><reservationId>${group[0]!.reservationId}</reservationId><ownerId>123456789012</ownerId><groupSet/><instancesSet>${group.map(instanceXml).join('')}</instancesSet></item>`

  async function boot(i: FakeInstance) {
    await new Promise((r) => setTimeout(r, bootDelay))
    if (i.state !== 'pending') return
    const vm = await startFakeVm({ userData: i.userData, rootDisk: i.rootDisk })
    if (i.state !== 'pending') return void (await vm.stop())
    i.vm = vm
    i.ip = vm.address
    i.state = 'running'
  }
  async function halt(i: FakeInstance, to: 'stopped' | 'terminated') {
    i.state = to === 'stopped' ? 'stopping' : 'shutting-down'
    const vm = i.vm
    i.vm = undefined
    i.ip = undefined
    await vm?.stop()
    if (to === 'terminated') {
      await rm(i.rootDisk, { recursive: true, force: true })
      deletedVolumes.add(i.volumeId)
      await new Promise((r) => setTimeout(r, 200))
    }
    i.state = to
  }
  const visible = (i: FakeInstance) => Date.now() >= i.visibleAt
  function byIds(q: URLSearchParams, region: string): FakeInstance[] {
    const ids = [...q].filter(([k]) => k.startsWith('InstanceId.')).map(([, v]) => v)
    return ids.map((id) => {
      const i = instances.get(id)
      if (!i || i.region !== region || !visible(i)) throw new Ec2Err('InvalidInstanceID.NotFound', 400, `The instance ID '${id}' does not exist`)
      return i
    })
  }

  async function handle(action: string, region: string, q: URLSearchParams): Promise<string> {
    switch (action) {
      case 'RunInstances': {
        const token = q.get('ClientToken') ?? ''
        const groups = [...q].filter(([k]) => k.startsWith('SecurityGroupId.')).map(([, v]) => v)
        const fingerprint = JSON.stringify([q.get('ImageId'), q.get('InstanceType'), q.get('UserData'), groups, q.get('InstanceMarketOptions.MarketType')])
        if (token) {
          const prev = [...instances.values()].find((i) => i.clientToken === token && i.region === region)
          if (prev) {
            if (prev.fingerprint !== fingerprint) throw new Ec2Err('IdempotentParameterMismatch', 400)
            return ok('RunInstances', `<reservationId>${prev.reservationId}</reservationId><ownerId>123456789012</ownerId><groupSet/><instancesSet>${instanceXml(prev)}</instancesSet>`)
          }
        }
        for (const g of groups) if (!securityGroups.has(g)) throw new Ec2Err('InvalidGroup.NotFound', 400, `The security group '${g}' does not exist`)
        const image = q.get('ImageId') ?? ''
        if (!images.some((x) => x.id === image)) throw new Ec2Err('InvalidAMIID.NotFound', 400, `The image id '[${image}]' does not exist`)
        const id = `i-${hex(8)}0`
        const i: FakeInstance = {
          id,
          region,
          reservationId: `r-${hex(8)}1`,
          state: 'pending',
          instanceType: q.get('InstanceType') ?? '',
          imageId: image,
          clientToken: token,
          fingerprint,
          userData: Buffer.from(q.get('UserData') ?? '', 'base64').toString('utf8'),
          tags: tagsFrom(q, 'instance'),
          volumeTags: tagsFrom(q, 'volume'),
          securityGroups: groups,
          spot: q.get('InstanceMarketOptions.MarketType') === 'spot',
          visibleAt: Date.now() + lag,
          volumeId: `vol-${hex(8)}2`,
          rootDisk: join(dir, id),
        }
        instances.set(id, i)
        void track(boot(i).catch(() => (i.state = 'terminated')))
        return ok('RunInstances', `<reservationId>${i.reservationId}</reservationId><ownerId>123456789012</ownerId><groupSet/><instancesSet>${instanceXml(i)}</instancesSet>`)
      }
      case 'DescribeInstances': {
        const filters = filtersOf(q)
        const states = filters.find((f) => f.name === 'instance-state-name')?.values
        const found = q.has('InstanceId.1') ? byIds(q, region) : [...instances.values()].filter((i) => i.region === region && visible(i) && matchTags(i.tags, filters) && (!states || states.includes(i.state)))
        const { items, next } = page(found, q)
        return ok('DescribeInstances', `<reservationSet>${items.map((i) => reservationXml([i])).join('')}</reservationSet>${next}`)
      }
      case 'StartInstances':
      case 'StopInstances':
      case 'TerminateInstances': {
        const list = byIds(q, region)
        const items = list.map((i) => {
          const prev = i.state
          if (action === 'StartInstances' && i.state === 'stopped') {
            i.state = 'pending'
            void track(boot(i).catch(() => (i.state = 'stopped')))
          } else if (action === 'StopInstances') {
            if (i.spot) throw new Ec2Err('UnsupportedOperation', 400, `The instance '${i.id}' is a spot instance and cannot be stopped`)
            if (i.state === 'running' || i.state === 'pending') void track(halt(i, 'stopped'))
          } else if (action === 'TerminateInstances' && i.state !== 'terminated' && i.state !== 'shutting-down') void track(halt(i, 'terminated'))
          return `<item><instanceId>${i.id}</instanceId><currentState><code>${STATE_CODE[i.state]}</code><name>${i.state}</name></currentState><previousState><code>${STATE_CODE[prev]}</code><name>${prev}</name></previousState></item>`
        })
        return ok(action, `<instancesSet>${items.join('')}</instancesSet>`)
      }
      case 'CreateSecurityGroup': {
        const name = q.get('GroupName') ?? ''
        if ([...securityGroups.values()].some((g) => g.name === name && g.region === region)) throw new Ec2Err('InvalidGroup.Duplicate', 400, `The security group '${name}' already exists for VPC 'vpc-1a2b3c4d'`)
        const g: FakeSecurityGroup = { id: `sg-${hex(8)}3`, region, name, tags: tagsFrom(q, 'security-group'), rules: [] }
        securityGroups.set(g.id, g)
        return ok('CreateSecurityGroup', `<return>true</return><groupId>${g.id}</groupId>`)
      }
      case 'AuthorizeSecurityGroupIngress': {
        const g = securityGroups.get(q.get('GroupId') ?? '')
        if (!g) throw new Ec2Err('InvalidGroup.NotFound', 400)
        for (const perm of list(q, 'IpPermissions')) {
          for (const [k, cidr] of perm) if (/^IpRanges\.\d+\.CidrIp$/.test(k)) g.rules.push({ from: Number(perm.get('FromPort')), to: Number(perm.get('ToPort')), cidr })
        }
        return ok('AuthorizeSecurityGroupIngress', '<return>true</return>')
      }
      case 'DescribeSecurityGroups': {
        const filters = filtersOf(q)
        const name = filters.find((f) => f.name === 'group-name')?.values
        const found = [...securityGroups.values()].filter((g) => g.region === region && matchTags(g.tags, filters) && (!name || name.includes(g.name)))
        const { items, next } = page(found, q)
        const xml = items.map((g) => `<item><ownerId>123456789012</ownerId><groupId>${g.id}</groupId><groupName>${esc(g.name)}</groupName><groupDescription>x</groupDescription><vpcId>vpc-1a2b3c4d</vpcId><ipPermissions/><ipPermissionsEgress/>${tagSet(g.tags)}</item>`)
        return ok('DescribeSecurityGroups', `<securityGroupInfo>${xml.join('')}</securityGroupInfo>${next}`)
      }
      case 'DeleteSecurityGroup': {
        const g = securityGroups.get(q.get('GroupId') ?? '')
        if (!g) throw new Ec2Err('InvalidGroup.NotFound', 400, `The security group '${q.get('GroupId')}' does not exist`)
        if ([...instances.values()].some((i) => i.state !== 'terminated' && i.securityGroups.includes(g.id))) throw new Ec2Err('DependencyViolation', 400, `resource ${g.id} has a dependent object`)
        securityGroups.delete(g.id)
        return ok('DeleteSecurityGroup', '<return>true</return>')
      }
      case 'DescribeVolumes': {
        const filters = filtersOf(q)
        const vols = [...instances.values()].filter((i) => i.region === region && !deletedVolumes.has(i.volumeId) && matchTags(i.volumeTags, filters))
        const xml = vols.map((i) => `<item><volumeId>${i.volumeId}</volumeId><size>10</size><availabilityZone>${region}a</availabilityZone><status>${i.state === 'shutting-down' ? 'deleting' : 'in-use'}</status><volumeType>gp3</volumeType>${tagSet(i.volumeTags)}</item>`)
        return ok('DescribeVolumes', `<volumeSet>${xml.join('')}</volumeSet>`)
      }
      case 'DescribeImages': {
        const owners = [...q].filter(([k]) => k.startsWith('Owner.')).map(([, v]) => v)
        const filters = filtersOf(q)
        const glob = (pat: string, s: string) => new RegExp(`^${pat.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`).test(s)
        const found = images.filter(
          (im) =>
            (!owners.length || owners.includes(im.owner)) &&
            filters.every((f) => (f.name === 'name' ? f.values.some((v) => glob(v, im.name)) : f.name === 'architecture' ? f.values.includes(im.arch) : f.name === 'state' ? f.values.includes('available') : true)),
        )
        const xml = found.map((im) => `<item><imageId>${im.id}</imageId><imageLocation>${im.owner}/${im.name}</imageLocation><imageState>available</imageState><imageOwnerId>${im.owner}</imageOwnerId><creationDate>${im.created}</creationDate><isPublic>true</isPublic><architecture>${im.arch}</architecture><imageType>machine</imageType><name>${im.name}</name><rootDeviceType>ebs</rootDeviceType><rootDeviceName>/dev/xvda</rootDeviceName><virtualizationType>hvm</virtualizationType></item>`)
        return ok('DescribeImages', `<imagesSet>${xml.join('')}</imagesSet>`)
      }
      case 'DescribeSpotPriceHistory': {
        const type = q.get('InstanceType.1') ?? ''
        const rows = spotPrices.get(type) ?? []
        const xml = rows.map(([zone, price], k) => `<item><instanceType>${esc(type)}</instanceType><productDescription>Linux/UNIX</productDescription><spotPrice>${price}</spotPrice><timestamp>2026-12-04T1${k % 10}:00:00.000Z</timestamp><availabilityZone>${zone}</availabilityZone></item>`)
        return ok('DescribeSpotPriceHistory', `<spotPriceHistorySet>${xml.join('')}</spotPriceHistorySet><nextToken/>`)
      }
      default:
        throw new Ec2Err('InvalidAction', 400, `The action ${action} is not valid for this web service.`)
    }
  }

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      void (async () => {
        const q = new URLSearchParams(Buffer.concat(chunks).toString('utf8'))
        const action = q.get('Action') ?? ''
        const auth = String(req.headers.authorization ?? '')
        const m = /Credential=([^/]+)\/\d{8}\/([^/]+)\/ec2\/aws4_request/.exec(auth)
        const region = m?.[2] ?? ''
        calls.push({ region, action })
        const send = (status: number, body: string) => {
          res.writeHead(status, { 'content-type': 'text/xml;charset=UTF-8' })
          res.end(body)
        }
        try {
          if (req.method !== 'POST' || req.url !== '/') throw new Ec2Err('InvalidAction', 400)
          if (!m || m[1] !== p.accessKeyId) throw new Ec2Err('AuthFailure', 401, 'AWS was not able to validate the provided access credentials')
          const queue = faults.get(action)
          const f = queue?.find((x) => !x.match || x.match(q))
          if (f) {
            f.times = (f.times ?? 1) - 1
            if (f.times <= 0) queue!.splice(queue!.indexOf(f), 1)
            throw new Ec2Err(f.code, f.status ?? DEFAULT_STATUS[f.code] ?? 400, `${f.code} (injected)`)
          }
          send(200, await handle(action, region, q))
        } catch (err) {
          if (err instanceof Ec2Err) send(err.status, errorBody(err.code, err.message))
          else send(500, errorBody('InternalError', (err as Error).message))
        }
      })()
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const addr = server.address()
  const url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`

  return {
    url,
    instances,
    securityGroups,
    calls,
    spotPrices,
    images,
    fail(action, f) {
      const q = faults.get(action) ?? []
      q.push({ times: 1, ...f })
      faults.set(action, q)
    },
    async interrupt(id) {
      const i = instances.get(id)
      if (!i) throw new Error(`no instance ${id}`)
      await halt(i, 'terminated')
      i.stateReason = 'Server.SpotInstanceTermination'
    },
    live: () => [...instances.values()].filter((i) => i.state !== 'terminated'),
    volumes: () => [...instances.values()].filter((i) => !deletedVolumes.has(i.volumeId)).map((i) => ({ id: i.volumeId, tags: i.volumeTags })),
    async stop() {
      await Promise.allSettled([...pending])
      await Promise.all([...instances.values()].map((i) => i.vm?.stop()))
      await new Promise<void>((r) => server.close(() => r()))
      server.closeAllConnections()
      await rm(dir, { recursive: true, force: true })
    },
  }
}
