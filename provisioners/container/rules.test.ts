import { describe, expect, test } from 'vitest'
import { resourceSpec } from '../../test/helpers/spec.js'
import type { DeploymentRequest } from '../types.js'
import { containerSourceProblems, imageRef, limitArgs, namePrefix, ownerFilter, parseName, replicaName, runArgs, volumeName } from './rules.js'

const digest = `sha256:${'ab'.repeat(32)}`
const req = (o: Partial<DeploymentRequest> = {}): DeploymentRequest => ({
  deploymentId: 'bp-1-7',
  serviceId: '7',
  blueprintId: '3',
  source: { kind: 'container', image: 'registry.example:5000/team/echo', digest },
  spec: resourceSpec({ vcpu: 0.5, memoryGiB: 0.25, replicas: 1, ports: [9000] }),
  env: { GREETING: 'hi; rm -rf /' },
  ...o,
})

describe('container rules', () => {
  test('default: an image by digest is accepted and referenced only as image@digest', () => {
    expect(containerSourceProblems({ image: 'registry.example:5000/team/echo', digest })).toEqual([])
    expect(imageRef({ kind: 'container', image: 'echo', digest })).toBe(`echo@${digest}`)
  })

  test('error: tags, digests in the image, other algorithms and upper case are refused', () => {
    expect(containerSourceProblems({ image: 'echo:latest', digest })[0]).toMatch(/tags are refused/)
    expect(containerSourceProblems({ image: `echo@${digest}`, digest })[0]).toMatch(/tags are refused/)
    expect(containerSourceProblems({ image: 'echo', digest: `sha512:${'a'.repeat(128)}` })).toHaveLength(1)
    expect(containerSourceProblems({ image: 'echo', digest: digest.toUpperCase() })).toHaveLength(1)
    expect(containerSourceProblems({ image: 'Echo', digest })).toHaveLength(1)
    expect(() => imageRef({ kind: 'container', image: 'echo:1', digest })).toThrow(TypeError)
  })

  test('default: names round-trip and carry the tag', () => {
    expect(replicaName('abc123', 'bp-1-7', 2)).toBe('bpo-abc123-bp-1-7-r2')
    expect(namePrefix('abc123', 'bp-1-7')).toBe('bpo-abc123-bp-1-7-r')
    expect(parseName('abc123', replicaName('abc123', 'bp-1-7', 2))).toEqual({ deploymentId: 'bp-1-7', replica: 2, volume: false })
    expect(parseName('abc123', volumeName('abc123', 'bp-1-7', 0))).toEqual({ deploymentId: 'bp-1-7', replica: 0, volume: true })
    expect(parseName('other1', replicaName('abc123', 'bp-1-7', 2))).toBeUndefined()
    expect(parseName('abc123', 'bpo-abc123-../x-r1')).toBeUndefined()
  })

  test('default: limits come from the spec; 0 means none', () => {
    expect(limitArgs({ vcpu: 0.5, memoryGiB: 0.25 })).toEqual(['--memory', String(256 * 1024 ** 2), '--cpus', '0.5'])
    expect(limitArgs({ vcpu: 0, memoryGiB: 0 })).toEqual([])
  })

  test('default: run arguments are one vector: labels, publish, data, limits, env as single words, image by digest last', () => {
    const a = runArgs({ req: req(), operatorId: 'op', tag: 'abc123', replica: 1, hostPort: 20001, publishAddress: '127.0.0.1', data: 'vol-1', markers: false, extra: ['--http-proxy=false'] })
    expect(a.at(-1)).toBe(`registry.example:5000/team/echo@${digest}`)
    expect(a).toContain('127.0.0.1:20001:9000')
    expect(a.slice(a.indexOf('-v'), a.indexOf('-v') + 2)).toEqual(['-v', 'vol-1:/data'])
    expect(a).toContain('GREETING=hi; rm -rf /')
    expect(a).toContain('PORT=9000')
    expect(a).toContain('io.blueprint-operator.replica=1')
    expect(a.filter((x) => x.startsWith('BPO_'))).toEqual([])
    expect(runArgs({ req: req(), operatorId: 'op', tag: 't', replica: 0, hostPort: 1, data: '/d' })).toContain('BPO_OWNER=op')
    expect(ownerFilter({ operatorId: 'op', tag: 't', deploymentId: 'd' })).toEqual(['--filter', 'label=io.blueprint-operator.owner=op', '--filter', 'label=io.blueprint-operator.tag=t', '--filter', 'label=io.blueprint-operator.deployment=d'])
  })

  test('error: a request whose env is set after the target values cannot override them', () => {
    const a = runArgs({ req: req({ env: { PORT: '1' } }), operatorId: 'op', tag: 't', replica: 0, hostPort: 1, data: '/d' })
    // the target's PORT comes later and wins (the env policy refuses such a request before this anyway)
    expect(a.lastIndexOf('PORT=9000')).toBeGreaterThan(a.indexOf('PORT=1'))
  })
})
