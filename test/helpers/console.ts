/**
 * A daemon's HTTP console without a chain: a real store with two requested services, the real local target
 * (instrumented), real actions, served by the real fastify server on 127.0.0.1.
 */
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { createTestCommon } from '../../core/common.js'
import { parseConfig } from '../../daemon/config.js'
import type { ChainEvent } from '../../chain/events.js'
import { createActions } from '../../daemon/actions.js'
import { createEventBus, watchStages } from '../../daemon/events.js'
import { startHttpServer, type HttpContext } from '../../daemon/http/index.js'
import { applyEvents } from '../../daemon/intake.js'
import { instrumentTargets } from '../../daemon/observe.js'
import { createStore } from '../../daemon/store.js'
import { createTargets } from '../../daemon/targets.js'

export const consoleOperator = `0x${'11'.repeat(20)}` as const

export function serviceInitiated(id: bigint, logIndex: number, deposit = 5_000_000n): ChainEvent {
  return {
    chainId: 31337, blockNumber: 1n, blockHash: `0x${'aa'.repeat(32)}`, txHash: `0x${'bb'.repeat(32)}`, logIndex,
    type: 'ServiceInitiated', serviceId: id, blueprintId: 1n, customer: `0x${'22'.repeat(20)}`, operator: consoleOperator,
    tier: 0, preferences: { ok: true, value: {} }, ttlSeconds: 60n, deposit, ratePerHour: 3_600_000n,
  }
}

export async function startTestConsole(o: { adminToken?: string } = {}) {
  const { common, shutdown } = createTestCommon()
  const dataDir = mkdtempSync(join(tmpdir(), 'bpo-console-'))
  const config = parseConfig(
    {
      operator: { id: 'op-console', data_dir: dataDir },
      chain: { rpc_url: 'http://127.0.0.1:1', chain_id: 31337, private_key: 'env:K', registry: consoleOperator, escrow: consoleOperator },
      http: { listen: '127.0.0.1:0', ...(o.adminToken && { admin_token: 'env:ADMIN' }) },
      providers: { local: { enabled: true, vcpu: 4, memory_gib: 8 } },
    },
    { env: { K: `0x${'ab'.repeat(32)}`, ...(o.adminToken && { ADMIN: o.adminToken }) } },
  )
  const bus = createEventBus(common.logger)
  const store = watchStages(await createStore(common, { file: join(dataDir, 'state.json'), operatorId: 'op-console', chainId: 31337 }), bus)
  await store.update((st) => applyEvents(st, [serviceInitiated(3n, 0), serviceInitiated(4n, 1)], { operator: consoleOperator, chainId: 31337, logger: pino({ level: 'silent' }) }))
  const targets = instrumentTargets(common, await createTargets(common, config))
  const kicked: string[] = []
  const actions = createActions(common, { store, targets, kick: (id) => kicked.push(id), dataDir, configDraining: false })
  const ctx: HttpContext = {
    common, config, store, targets, bus, actions, operator: consoleOperator, adminToken: config.http.adminToken,
    chain: () => ({ chainId: 31337, head: '10', cursor: '8', lag: 2 }),
    now: () => BigInt(Math.floor(Date.now() / 1000)),
    checks: async () => [],
  }
  const http = await startHttpServer({ ...ctx, host: '127.0.0.1', port: 0 })
  return {
    url: http.url,
    ctx,
    kicked,
    dataDir,
    async stop() {
      await http.close()
      await targets.close()
      await shutdown(1000)
    },
  }
}
