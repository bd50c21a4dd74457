/**
 * A fleet of N active services for the scale bench and the tick's request-count test: a store holding their records
 * (payment facts as intake would have recorded them from the fake node's events, test/fakes/escrow-rpc.ts), the
 * daemon's service manager over the real escrow client, and one own target whose replicas answer healthy at once.
 */
import { join } from 'node:path'
import { bytesToHex } from 'viem'
import { mnemonicToAccount } from 'viem/accounts'
import type { Common } from '../../core/common.js'
import { anvilMnemonic } from '../../chain/evm/anvil.js'
import { createEvmPublicClient, createEvmWalletClient } from '../../chain/evm/clients.js'
import { createEscrowClient } from '../../chain/evm/escrow.js'
import { parseConfig } from '../../daemon/config.js'
import { factsFromOnchain } from '../../daemon/paymentFacts.js'
import type { Placement } from '../../daemon/placement/placement.js'
import type { Target, TargetRegistry } from '../../daemon/ports.js'
import { createServiceManager } from '../../daemon/service/manager.js'
import type { ServiceRecord } from '../../daemon/state.js'
import { createStore } from '../../daemon/store.js'
import type { Provisioner } from '../../provisioners/types.js'
import { fakeChainId, fakeEscrowAddress, fakeHead, fleetService } from '../fakes/escrow-rpc.js'

/** Service `id` of a fleet of `n` as the daemon recorded it (active, one healthy replica, facts from its events). */
export function fleetRecord(id: string, n: number): ServiceRecord {
  const s = fleetService(BigInt(id), n)!.recorded
  const at = new Date().toISOString()
  return {
    serviceId: id, blueprintId: '1', chainId: fakeChainId, customer: s.customer, tierIndex: s.tier, tier: 'basic',
    ttlSeconds: s.ttl.toString(), deposit: s.balance.toString(), deploymentId: `bp-${fakeChainId}-${id}`, state: 'active',
    spec: { vcpu: 1, memoryGiB: 2, storageGiB: 10, gpu: { count: 0 }, replicas: 1, minReplicas: 1, maxReplicas: 2, regions: [], spotAllowed: false, highAvailability: false, ports: [8080], tier: 'basic' },
    source: { kind: 'native', url: 'https://artifacts.example/demo', sha256: 'ab'.repeat(32) },
    quote: { provider: 'own', target: 'ssh:rack-1', region: 'eu-home', instanceType: 'ssh:rack-1', placement: 'rack-1', hourlyUsd: '0.05', totalHourlyUsd: '0.05', replicas: 1, source: 'own-targets' },
    replicas: 1, endpoints: ['http://10.0.0.21:20001'], costSince: at,
    chain: factsFromOnchain({ ...s, state: 'active' }, fakeHead - 2n),
    health: { failures: 0, restarts: 0, healthy: true, lastCheck: at },
    ledger: { paid: s.balance.toString(), earned: '0', withdrawn: '0', refunded: '0', cloudCostUsd: '0' },
    createdAt: at, updatedAt: at,
    history: [{ at, from: null, to: 'requested', cause: 'ServiceInitiated' }, { at, from: 'requested', to: 'provisioning', cause: 'quoted' }, { at, from: 'provisioning', to: 'active', cause: 'healthy' }],
  }
}

/** Store, escrow client and service manager of a fleet of `n` services against the fake node at `rpcUrl`. */
export async function startFleet(common: Common, o: { n: number; rpcUrl: string; dir: string; verifyPerTick?: number }) {
  const store = await createStore(common, { file: join(o.dir, 'state.json'), operatorId: 'fleet', chainId: fakeChainId })
  const ids = Array.from({ length: o.n }, (_, i) => String(i + 1))
  await store.update((st) => {
    for (const id of ids) st.services[id] = fleetRecord(id, o.n)
    st.cursor = { blockNumber: (fakeHead - 2n).toString(), blockHash: `0x${(fakeHead - 2n).toString(16).padStart(64, '0')}` }
  })
  const publicClient = createEvmPublicClient({ rpcUrl: o.rpcUrl, chainId: fakeChainId, batchSize: 50 })
  const key = bytesToHex(mnemonicToAccount(anvilMnemonic, { addressIndex: 1 }).getHdKey().privateKey!)
  const walletClient = createEvmWalletClient({ rpcUrl: o.rpcUrl, chainId: fakeChainId, privateKey: key })
  const escrow = createEscrowClient(common, { publicClient, walletClient, escrow: fakeEscrowAddress, registry: fakeEscrowAddress })
  const provisioner = {
    status: async (deploymentId: string) => ({ deploymentId, exists: true, replicasWanted: 1, replicasReady: 1, endpoints: ['http://10.0.0.21:20001'], healthy: true }),
    scale: async (deploymentId: string, replicas: number) => ({ deploymentId, exists: true, replicasWanted: replicas, replicasReady: replicas, endpoints: replicas ? ['http://10.0.0.21:20001'] : [], healthy: true }),
  } as unknown as Provisioner
  const target = { name: 'ssh:rack-1', kind: 'own', provider: 'own', provisioner, sourceKinds: ['native'], offersFor: () => [] } as unknown as Target
  const targets: TargetRegistry = { list: () => [target], byName: (name) => (name === target.name ? target : undefined), provisioners: () => [provisioner], close: async () => undefined }
  const config = parseConfig(
    {
      operator: { id: 'fleet', data_dir: o.dir },
      chain: { rpc_url: o.rpcUrl, chain_id: fakeChainId, private_key: 'env:BPO_FLEET_KEY', registry: fakeEscrowAddress, escrow: fakeEscrowAddress },
      loop: { verify_per_tick: o.verifyPerTick ?? 500 },
      http: { enabled: false },
      providers: { local: { enabled: false } },
    },
    { env: { BPO_FLEET_KEY: key }, baseDir: o.dir },
  )
  // chain time as the daemon reads it: one latest block per tick, shared by every service
  let blockRead: Promise<bigint> | undefined
  const now = async () => (blockRead ??= publicClient.getBlock({ blockTag: 'latest' }).then((b) => b.timestamp))
  const manager = createServiceManager(common, { config, store, escrow, targets, placement: {} as Placement, now })
  return {
    ids,
    store,
    escrow,
    manager,
    /** One reconcile pass, with a fresh read of the latest block. */
    async tick() {
      blockRead = undefined
      await manager.tick()
    },
    async stop() {
      await manager.stop()
      await store.close()
    },
  }
}
