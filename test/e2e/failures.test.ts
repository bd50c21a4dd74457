/**
 * Requests that cannot be served are rolled back and refunded on chain with the right reason code; nothing is left
 * running, and the daemon keeps serving everything else.
 */
import { existsSync, mkdtempSync } from 'node:fs'
import { createHash } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { compileContracts } from '../../chain/contracts/compile.js'
import { processesOf, startInProcess, startStack, waitFor, type Stack } from '../helpers/stack.js'

describe('e2e: failures are refunded with a reason code', () => {
  let stack: Stack
  let d: Awaited<ReturnType<typeof startInProcess>>
  const marker = join(mkdtempSync(join(tmpdir(), 'bpo-marker-')), 'executed')
  // an artifact that would leave a marker if it were ever run
  const evil = `#!/bin/sh\ntouch ${marker}\nexec sleep 60\n`

  beforeAll(async () => {
    stack = await startStack({ attempts: 2 })
    stack.artifacts.put('evil', evil)
    d = await startInProcess(stack)
  })
  afterAll(async () => {
    await d?.stop()
    await stack?.stop()
  })

  /** Request a service of `blueprintId`, wait until it is refunded, and check the refund on chain. */
  async function expectRefund(blueprintId: bigint, reason: string, o: { tier?: number; preferences?: `0x${string}`; ttlSeconds?: bigint } = {}) {
    const { chain } = stack
    const deposit = 1_234_567n
    await chain.customer.mint(deposit)
    const before = await chain.customer.balanceOf()
    const { serviceId } = await chain.customer.requestService({
      blueprintId,
      operator: chain.operatorAddress,
      tier: o.tier ?? 0,
      ...(o.preferences && { preferences: o.preferences }),
      ttlSeconds: o.ttlSeconds ?? 3600n,
      deposit,
    })
    const s = await waitFor(`refund of service ${serviceId}`, () => stack.service(serviceId)?.state === 'refunded' && stack.service(serviceId), 45_000)
    expect(s.reason).toBe(reason)
    expect(s.problems?.length).toBeGreaterThan(0)
    // the exact remainder (here: all of it, the service never ran) went back with the reason code
    expect(await stack.refunds(serviceId)).toEqual([{ amount: deposit, reason }])
    expect(await chain.customer.balanceOf()).toBe(before)
    expect(processesOf(`bp-${chain.chainId}-${serviceId}`, stack.operatorId)).toEqual([])
    expect((await stack.events(serviceId, 'ServiceActivated')).length).toBe(0)
    return s
  }

  test('error: sha256 mismatch — the artifact is never executed', async () => {
    const wrong = createHash('sha256').update('something else').digest('hex')
    const id = await stack.registerDemo({ url: stack.artifacts.urlOf('evil'), sha256: wrong, name: 'mismatch' })
    await expectRefund(id, 'ARTIFACT_DIGEST_MISMATCH')
    expect(existsSync(marker)).toBe(false)
  })

  test('error: requirements above the operator’s ceiling', async () => {
    const id = await stack.registerDemo({ vcpuMilli: 64_000, name: 'huge' })
    const s = await expectRefund(id, 'REQUIREMENTS_ABOVE_CEILING')
    expect(s.problems!.join()).toMatch(/vcpu 64 above the operator's ceiling 16/)
  })

  test('error: artifact URL unreachable', async () => {
    const id = await stack.registerDemo({ url: 'http://127.0.0.1:9/nothing-listens-here', name: 'unreachable' })
    await expectRefund(id, 'ARTIFACT_UNREACHABLE')
  })

  test('error: malformed on-chain data — bad source URL, unknown tier, undecodable preferences', async () => {
    const badUrl = await stack.registerDemo({ url: 'ftp://example.invalid/x', name: 'bad-url' })
    const s = await expectRefund(badUrl, 'MALFORMED_REQUEST')
    expect(s.problems!.join()).toMatch(/sources\[0\]/)
    const fourTiers = await stack.registerDemo({ prices: [1n, 2n, 3n, 4n], name: 'four-tiers' })
    const t = await expectRefund(fourTiers, 'MALFORMED_REQUEST', { tier: 3 })
    expect(t.problems!.join()).toMatch(/tier: got 3/)
    const ok = await stack.registerDemo({ name: 'prefs' })
    const p = await expectRefund(ok, 'MALFORMED_REQUEST', { preferences: '0xff00' })
    expect(p.problems!.join()).toMatch(/preferences/)
  })

  test('error: a TTL near 2^64 from an escrow without bounds (an older deployment) is refunded before quoting', async () => {
    const { chain } = stack
    // the same escrow with its TTL bound lifted, swapped in at the escrow's address (same immutables, same storage)
    const variant = await compileContracts({ patch: (name, src) => (name === 'ServiceEscrow' ? src.replace('MAX_TTL = 100 * 365 days', 'MAX_TTL = type(uint64).max') : src) })
    expect(variant.ServiceEscrow.bytecode).not.toBe((await compileContracts()).ServiceEscrow.bytecode)
    const hash = await chain.wallets.deployer.deployContract({ abi: variant.ServiceEscrow.abi, bytecode: variant.ServiceEscrow.bytecode, args: [chain.addresses.token, chain.addresses.registry] })
    const { contractAddress } = await chain.publicClient.waitForTransactionReceipt({ hash })
    const original = (await chain.publicClient.getCode({ address: chain.addresses.escrow }))!
    await chain.testClient.setCode({ address: chain.addresses.escrow, bytecode: (await chain.publicClient.getCode({ address: contractAddress! }))! })
    try {
      const id = await stack.registerDemo({ name: 'forever' })
      const s = await expectRefund(id, 'MALFORMED_REQUEST', { ttlSeconds: 2n ** 64n - 1n })
      expect(s.problems!.join()).toMatch(/^ttl: 18446744073709551615 s is outside 1 \.\. 3153600000 s/)
      expect(s.quote).toBeUndefined()
      expect(s.history.map((h) => h.to)).toEqual(['requested', 'refunding', 'refunded'])
    } finally {
      await chain.testClient.setCode({ address: chain.addresses.escrow, bytecode: original })
    }
  })

  test('error: the tier’s price does not cover the capacity (margin)', async () => {
    const id = await stack.registerDemo({ prices: [1n, 1n, 1n], name: 'cheap' })
    await expectRefund(id, 'MARGIN_TOO_LOW')
  })

  test('behavior: a good request is still served after all the bad ones', async () => {
    const id = await stack.registerDemo({ name: 'good' })
    const { serviceId } = await stack.chain.requestService({ blueprintId: id, deposit: 3_600_000n })
    const s = await waitFor('active', () => stack.service(serviceId)?.state === 'active' && stack.service(serviceId))
    expect((await fetch(s.endpoints[0]!)).status).toBe(200)
  })
})
