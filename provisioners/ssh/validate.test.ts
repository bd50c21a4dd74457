import { describe, expect, test } from 'vitest'
import type { DeploymentRequest } from '../types.js'
import { assertDeploymentId, assertReplicas, requestProblems } from './validate.js'

const base = (): DeploymentRequest => ({
  deploymentId: 'bp-31337-7',
  serviceId: '7',
  blueprintId: '3',
  source: { kind: 'native', url: 'http://127.0.0.1:1/a', sha256: 'a'.repeat(64) },
  spec: { vcpu: 1, memoryGiB: 1, storageGiB: 1, gpu: { count: 0 }, replicas: 1, minReplicas: 1, maxReplicas: 1, regions: [], spotAllowed: false, highAvailability: false, ports: [8080], tier: 'basic' },
})

describe('validate', () => {
  test('default: a well-formed request has no problems', () => {
    expect(requestProblems(base())).toEqual([])
    expect(requestProblems({ ...base(), source: { kind: 'container', image: 'localhost:5000/echo', digest: `sha256:${'b'.repeat(64)}` } })).toEqual([])
  })

  test.each(['$(touch x)', 'a;b', 'A-UPPER', '-lead', 'trail-', 'a\nb', 'a b', '`x`', "a'b", 'é', '', 'x'.repeat(64), '../etc'])('error: deployment id %j is refused', (id) => {
    expect(() => assertDeploymentId(id)).toThrow(expect.objectContaining({ reason: 'MALFORMED_REQUEST', retryable: false }))
    expect(requestProblems({ ...base(), deploymentId: id }).length).toBeGreaterThan(0)
  })

  test.each(['lower', 'A-B', '1ABC', 'A B', 'A=B', 'A$(x)', 'A\nB', 'PORT', 'BPO_OWNER', 'PATH', 'LD_PRELOAD'])('error: env key %j is refused', (k) => {
    expect(requestProblems({ ...base(), env: { [k]: 'v' } }).length).toBe(1)
  })

  test('args: hostile env values are accepted (they are quoted, never parsed), NUL is not', () => {
    expect(requestProblems({ ...base(), env: { A: '$(touch x)', B: '`x`\n; rm -rf /', C: `'"\\` } })).toEqual([])
    expect(requestProblems({ ...base(), env: { A: 'a\0b' } })).toEqual(['env.A: contains a NUL byte'])
  })

  test('error: sources outside the expected shapes', () => {
    const bad: DeploymentRequest['source'][] = [
      { kind: 'native', url: 'file:///etc/passwd', sha256: 'a'.repeat(64) },
      { kind: 'native', url: 'not a url', sha256: 'a'.repeat(64) },
      { kind: 'native', url: 'http://x/a', sha256: 'A'.repeat(64) },
      { kind: 'container', image: 'localhost:5000/echo:latest', digest: `sha256:${'b'.repeat(64)}` },
      { kind: 'container', image: 'echo;touch x', digest: `sha256:${'b'.repeat(64)}` },
      { kind: 'container', image: '--privileged', digest: `sha256:${'b'.repeat(64)}` },
      { kind: 'container', image: 'echo', digest: 'latest' },
    ]
    for (const source of bad) expect(requestProblems({ ...base(), source }).length).toBeGreaterThan(0)
  })

  test('error: placement and health path shapes', () => {
    expect(requestProblems({ ...base(), placement: 'h1; rm -rf /' }).length).toBe(1)
    expect(requestProblems({ ...base(), healthPath: 'healthz' }).length).toBe(1)
  })

  test('error: replica counts', () => {
    for (const n of [-1, 1.5, Number.NaN, 1001]) expect(() => assertReplicas(n)).toThrow(expect.objectContaining({ reason: 'MALFORMED_REQUEST' }))
    expect(() => assertReplicas(0)).not.toThrow()
  })
})
