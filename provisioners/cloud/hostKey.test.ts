import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, test } from 'vitest'
import { makeSecret } from '../../config/secrets.js'
import { deriveHostKey } from './hostKey.js'
import { buildUserData, parseUserData } from './userData.js'
import { ownershipTags, resourceName } from './ownership.js'
import { retryAfterMs } from './callApi.js'

const loginKey = makeSecret('env:LOGIN', '-----BEGIN OPENSSH PRIVATE KEY-----\nnot-a-real-key\n-----END OPENSSH PRIVATE KEY-----\n')
const base = { loginKey, operatorId: 'op', deploymentId: 'bp-1-2', replica: 0, generation: 0 }

describe('deriveHostKey', () => {
  test('default: OpenSSH accepts the private key and derives the same public key', () => {
    const k = deriveHostKey(base)
    const dir = mkdtempSync(join(tmpdir(), 'bpo-hk-'))
    try {
      writeFileSync(join(dir, 'k'), k.privateKey, { mode: 0o600 })
      const pub = execFileSync('ssh-keygen', ['-y', '-f', join(dir, 'k')]).toString().trim().split(' ').slice(0, 2).join(' ')
      expect(pub).toBe(k.publicKey)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  test('behavior: deterministic per (login key, operator, deployment, replica, generation), different otherwise', () => {
    const k = deriveHostKey(base).publicKey
    expect(deriveHostKey(base).publicKey).toBe(k)
    for (const o of [{ replica: 1 }, { generation: 1 }, { deploymentId: 'bp-1-3' }, { operatorId: 'op2' }, { loginKey: makeSecret('env:X', 'other') }]) {
      expect(deriveHostKey({ ...base, ...o }).publicKey).not.toBe(k)
    }
  })
})

describe('user data, tags, Retry-After', () => {
  test('default: user data round-trips and carries only the pinned host key and the login key', () => {
    const hostKey = deriveHostKey(base)
    const text = buildUserData({ hostKey, loginPublicKey: 'ssh-ed25519 AAAAlogin' })
    expect(text.startsWith('#cloud-config\n')).toBe(true)
    const c = parseUserData(text)
    expect(c.ssh_keys.ed25519_public).toBe(hostKey.publicKey)
    expect(c.ssh_genkeytypes).toEqual([])
    expect(c.users).toEqual([{ name: 'root', ssh_authorized_keys: ['ssh-ed25519 AAAAlogin'] }])
  })

  test('default: ownership tags and names fit label rules', () => {
    const t = ownershipTags({ operatorId: 'op', deploymentId: 'bp-1-2', serviceId: '9'.repeat(78), role: 'vm', replica: 2, generation: 1 })
    for (const v of Object.values(t)) expect(v).toMatch(/^[a-z0-9][a-z0-9._-]{0,62}$/)
    expect(t['bpo-replica']).toBe('2')
    expect(resourceName('x'.repeat(63), 'r0-g0').length).toBeLessThanOrEqual(63)
  })

  test('args: Retry-After in seconds or as an HTTP date', () => {
    expect(retryAfterMs('3')).toBe(3000)
    expect(retryAfterMs(new Date(10_000).toUTCString(), 4_000)).toBe(6_000)
    expect(retryAfterMs(undefined)).toBeUndefined()
  })
})
