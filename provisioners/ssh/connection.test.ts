import { describe, expect, test } from 'vitest'
import { parsePinnedKey } from './connection.js'
import { hostLayout } from './hostAgent.js'
import type { SshHost } from './types.js'

// a real ed25519 public key (from ssh-keygen)
const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ4AEpJx/ur/QOQNaawrnRVh3m9c2A2JefQOX1zZIs1O'

describe('parsePinnedKey', () => {
  test('default: type and raw blob', () => {
    const k = parsePinnedKey(`${KEY} comment`)
    expect(k.type).toBe('ssh-ed25519')
    expect(k.blob.length).toBe(51)
  })

  test('error: malformed pins are refused', () => {
    expect(() => parsePinnedKey('ssh-ed25519')).toThrow(/look like/)
    expect(() => parsePinnedKey('ssh-rsa ' + KEY.split(' ')[1])).toThrow(/not a ssh-rsa key/)
    expect(() => parsePinnedKey('ssh-ed25519 !!!')).toThrow(/look like/)
  })
})

describe('hostLayout', () => {
  const h = (remoteRoot?: string): SshHost => ({ name: 'h', address: 'x', port: 22, user: 'u', privateKey: '', hostKey: KEY, capacity: { vcpu: 1, memoryGiB: 1, storageGiB: 1 }, hourlyUsd: '1', ...(remoteRoot ? { remoteRoot } : {}) })

  test('default: paths under the default root, a tag per operator and root', () => {
    const l = hostLayout(h(), 'op')
    expect(l.dep('bp-1')).toBe('/var/lib/blueprint-operator/ops/op/bp-1')
    expect(l.tag).toMatch(/^[0-9a-f]{10}$/)
    expect(hostLayout(h(), 'op2').tag).not.toBe(l.tag)
    expect(hostLayout(h('/srv/bpo/'), 'op').dep('x')).toBe('/srv/bpo/ops/op/x')
  })

  test.each(['relative', '/', '/a/../b', "/a'b", '/a b', '/$(x)'])('error: remoteRoot %j is refused', (root) => {
    expect(() => hostLayout(h(root), 'op')).toThrow(/remoteRoot/)
  })
})
