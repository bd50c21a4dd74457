import { describe, expect, test } from 'vitest'
import { ConfigError } from '../../config/load.js'
import { parseConfig } from '../../daemon/config.js'

const base = (store?: Record<string, unknown>) => ({
  operator: { id: 'op' },
  chain: { rpc_url: 'http://127.0.0.1:8545', chain_id: 1, private_key: 'env:KEY', registry: `0x${'11'.repeat(20)}`, escrow: `0x${'22'.repeat(20)}` },
  ...(store && { store }),
})
const env = { KEY: `0x${'ab'.repeat(32)}`, PG: 'postgres://bpo:pw-123@db.internal:5432/bpo' }

describe('[store]', () => {
  test('default: embedded (no url), leases of 15 s', () => {
    const c = parseConfig(base(), { env })
    expect(c.store).toEqual({ leaseMs: 15_000, sqliteSynchronous: 'full' })
  })

  test('args: url by reference is resolved and prints as its reference', () => {
    const c = parseConfig(base({ url: 'env:PG', lease_ms: 5000 }), { env })
    expect(c.store.url!.reveal()).toBe(env.PG)
    expect(JSON.stringify(c.store)).not.toContain('pw-123')
    expect(c.store.leaseMs).toBe(5000)
    expect(parseConfig(base({ url: 'postgres://bpo@db.internal/bpo' }), { env }).store.url!.reveal()).toBe('postgres://bpo@db.internal/bpo')
  })

  test('error: a literal URL with a password, a reference to something else, a short lease', () => {
    let err: unknown
    try {
      parseConfig(base({ url: 'postgres://bpo:pw-123@db/bpo', lease_ms: 10 }), { env })
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(ConfigError)
    const problems = (err as ConfigError).problems
    expect(problems.map((p) => p.path).sort()).toEqual(['store.lease_ms', 'store.url'])
    expect(JSON.stringify(problems)).not.toContain('pw-123')
    expect(() => parseConfig(base({ url: 'env:KEY' }), { env })).toThrow(/store\.url: env:KEY does not hold a postgres:\/\/ URL/)
  })
})
