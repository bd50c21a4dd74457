/**
 * A grid worker speaking provisioners/threefold/protocol.ts without @threefold/grid_client, for the supervisor's
 * lifecycle tests: `deployVm` misbehaves on purpose by name ("crash" exits, "hang" never answers, "slow" answers
 * after 300 ms); everything else answers like the real worker would.
 */
'use strict'
let inited = false
const contracts = new Map()
let next = 1
const ops = {
  ping: async () => ({ pid: process.pid, initialized: inited }),
  init: async (p) => {
    if (!p.mnemonic) throw Object.assign(new Error('init needs mnemonic'), { gridCode: 'GRID_BAD_REQUEST' })
    inited = true
    return { twinId: p.twinId ?? 7, connected: p.connect !== false }
  },
  deployVm: async (p) => {
    if (p.name === 'crash') process.exit(3)
    if (p.name === 'hang') return new Promise(() => {})
    if (p.name === 'slow') await new Promise((r) => setTimeout(r, 300))
    if (p.name === 'full') throw Object.assign(new Error('node has not enough capacity'), { gridCode: 'GRID_DEPLOY_FAILED', failover: { kind: 'capacity', scope: 'offer' } })
    const id = String(next++)
    contracts.set(id, { contractId: id, kind: 'node', nodeId: p.nodeId, deploymentName: p.name })
    return { contracts: [contracts.get(id)] }
  },
  listContracts: async () => ({ contracts: [...contracts.values()] }),
  shutdown: async () => {
    setImmediate(() => process.exit(0))
    return { ok: true }
  },
}
process.on('message', async (m) => {
  const op = ops[m.op]
  try {
    if (!op) throw Object.assign(new Error(`unknown op ${m.op}`), { gridCode: 'GRID_UNKNOWN_OP' })
    process.send({ id: m.id, ok: true, result: await op(m.params) })
  } catch (err) {
    process.send({ id: m.id, ok: false, error: { code: err.gridCode || 'GRID_DEPLOY_FAILED', message: err.message, retryable: false, ...(err.failover && { failover: err.failover }) } })
  }
})
process.on('disconnect', () => process.exit(0))
process.send({ type: 'ready', pid: process.pid })
