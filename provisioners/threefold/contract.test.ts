/**
 * The provisioner contract suite for the ThreeFold target, up to the Zero-OS edge: contracts are created and cancelled
 * for real on a TFChain runtime (spec 61) under chopsticks by the protocol worker test/fakes/grid-worker-chain.cjs
 * (grid_client's deployment objects, signed with the twin's mnemonic); no VM boots, so there is no `probe` and the
 * data check does not apply (scale(0) loses the data on the grid: supportsDataKeep false).
 */
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { mnemonicGenerate } from '@polkadot/util-crypto'
import { createTestCommon } from '../../core/common.js'
import { usd } from '../../core/money.js'
import { TierNames } from '../../core/spec.js'
import { startGridProxy } from '../../test/fakes/grid-proxy.js'
import { setupGrid, startTfchainDev, type TfchainDev } from '../../test/helpers/tfchain.js'
import { runProvisionerContract } from '../../test/provisioner-contract/suite.js'
import type { DeploymentRequest } from '../types.js'
import { createGridSupervisor } from './createGridSupervisor.js'
import { createThreefoldProvisioner } from './createThreefoldProvisioner.js'

const chainWorker = fileURLToPath(new URL('../../test/fakes/grid-worker-chain.cjs', import.meta.url))
const { common } = createTestCommon()

async function twin(dev: TfchainDev, mnemonic: string) {
  const op = dev.keyring.addFromUri(mnemonic)
  await dev.fund(op.address, 10_000n * 10_000_000n)
  await dev.block([await dev.sign(op, dev.api.tx.tfgridModule!.userAcceptTc!('l', 'h'))])
  await dev.block([await dev.sign(op, dev.api.tx.tfgridModule!.createTwin!('::9'))])
}

runProvisionerContract('threefold', async () => {
  const dev = await startTfchainDev()
  await setupGrid(dev)
  const mine = mnemonicGenerate()
  const theirs = mnemonicGenerate()
  await twin(dev, mine)
  await twin(dev, theirs)
  const proxy = await startGridProxy({ 1: { used_resources: { cru: 0, sru: 0, hru: 0, mru: 0 } } })
  const offers = [{ provider: 'threefold' as const, source: 's', fetchedAt: 0, region: 'BE', instanceType: 'node-1/1c-1g', vcpu: 1, memoryGiB: 1, gpu: { count: 0 }, includedStorageGiB: 0, hourlyUsd: usd('0.01') }]
  const make = (mnemonic: string, stateDir: string, substrateUrl = dev.chain.wsUrl) =>
    createThreefoldProvisioner(common, {
      supervisor: createGridSupervisor(common, { workerPath: chainWorker, init: async () => ({ mnemonic, network: 'dev', substrateUrl, relayUrl: 'ws://127.0.0.1:9', proxyUrl: proxy.url }), callTimeoutMs: 30_000, startTimeoutMs: 20_000 }),
      proxyUrl: proxy.url,
      catalogOffers: () => offers,
      tftUsd: async () => '0.02',
      minRunwayHours: 72,
      tftBuffer: '0.02',
      farms: [],
      nodeCooldownMs: 60_000,
      runnerFlist: 'https://hub.grid.tf/tf-official-apps/base:latest.flist',
      stateDir,
    })
  const myState = mkdtempSync(join(tmpdir(), 'tf-ct-'))
  const provisioner = make(mine, myState)
  const otherOperator = make(theirs, mkdtempSync(join(tmpdir(), 'tf-ct-')))
  const reopened: Array<ReturnType<typeof make>> = []
  return {
    provisioner,
    otherOperator,
    reopen: async () => {
      const p = make(mine, myState)
      reopened.push(p)
      return p
    },
    makeRequest: (deploymentId, o = {}): DeploymentRequest => {
      const replicas = o.replicas ?? 1
      return {
        deploymentId,
        serviceId: '1',
        blueprintId: '1',
        source: { kind: 'native', url: 'https://artifacts.example/bp', sha256: 'b'.repeat(64) },
        spec: { vcpu: 1, memoryGiB: 1, storageGiB: 1, gpu: { count: 0 }, replicas, minReplicas: replicas, maxReplicas: replicas, regions: [], spotAllowed: false, highAvailability: false, ports: [8080], tier: TierNames[0] },
      }
    },
    supportsDataKeep: false,
    unreachable: async () => make(mine, mkdtempSync(join(tmpdir(), 'tf-ct-')), 'ws://127.0.0.1:9'),
    async teardown() {
      await provisioner.close()
      await otherOperator.close()
      for (const p of reopened) await p.close()
      await proxy.close()
      await dev.stop()
    },
  }
})
