/**
 * GRID_CANCEL_FAILED for real: the twin's account cannot pay the fee of `cancelContract`, so TFChain (a spec 61
 * runtime under chopsticks) does not include the cancellation. destroy says so (retryable) and forgets nothing: the
 * contract stays live on chain and in the target's state; once the account is funded again, destroy cancels it.
 * The worker is test/fakes/grid-worker-zos.cjs (real extrinsics; the Zero-OS node and the RMB relay are faked).
 */
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { createTestCommon } from '../../core/common.js'
import { isRetryable } from '../../core/errors.js'
import { TierNames } from '../../core/spec.js'
import { canBootGridVms, startGridFarm, farmProvisioner, type GridFarm } from '../../test/helpers/gridFarm.js'

const { common, shutdown } = createTestCommon()

describe.skipIf(!canBootGridVms)('threefold: a cancellation TFChain refuses (grid VMs need root: network namespaces)', () => {
  let farm: GridFarm
  let prov: ReturnType<typeof farmProvisioner>
  beforeAll(async () => {
    farm = await startGridFarm()
    prov = farmProvisioner(common, farm, { stateDir: mkdtempSync(join(tmpdir(), 'tf-cancel-')), bootTimeoutMs: 120_000 })
  }, 180_000)
  afterAll(async () => {
    await prov?.close()
    await farm?.stop()
    await shutdown()
  })

  test('error: an unpaid cancelContract is GRID_CANCEL_FAILED (retryable), the contract kept; funded, destroy completes', async () => {
    const id = 'cancel-1'
    await prov.provision({
      deploymentId: id,
      serviceId: '1',
      blueprintId: '1',
      source: { kind: 'native', url: farm.artifacts.urlOf('demo-service'), sha256: farm.artifacts.sha256('demo-service') },
      spec: { vcpu: 1, memoryGiB: 1, storageGiB: 1, gpu: { count: 0 }, replicas: 1, minReplicas: 1, maxReplicas: 1, regions: [], spotAllowed: false, highAvailability: false, ports: [8080], tier: TierNames[0] },
    })
    const before = await farm.contractsOf(farm.twinId)
    expect(before.size).toBeGreaterThan(0)

    const account = farm.dev.keyring.addFromUri(farm.mnemonic).address
    await farm.dev.fund(account, 0n)
    const err = await prov.destroy(id).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(err).toMatchObject({ code: 'GRID_CANCEL_FAILED' })
    expect(isRetryable(err)).toBe(true)
    expect(await farm.contractsOf(farm.twinId)).toEqual(before)
    expect((await prov.listOwned()).map((o) => o.deploymentId)).toContain(id)

    await farm.dev.fund(account, 10_000n * 10_000_000n)
    await prov.destroy(id)
    expect((await farm.contractsOf(farm.twinId)).size).toBe(0)
    expect((await prov.listOwned()).map((o) => o.deploymentId)).not.toContain(id)
  }, 300_000)
})
