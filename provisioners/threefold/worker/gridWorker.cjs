/**
 * The grid worker: the only process that loads @threefold/grid_client (CommonJS, and its tfchain/rmb clients install
 * signal handlers that call process.exit). It speaks protocol.ts over the IPC channel: `{ id, op, params }` in,
 * `{ id, ok, result | error: { code, message, retryable, failover? } }` out. The mnemonic arrives only in `init`.
 * It exits when the IPC channel closes (the daemon died) so it is never orphaned.
 */
'use strict'

let grid // the @threefold/grid_client module, loaded on first use
let client // a connected GridClient
let opts // init parameters (mnemonic included); never logged

const loadGrid = () => {
  if (!grid) {
    try {
      grid = require('@threefold/grid_client')
    } catch (err) {
      throw fail('GRID_CLIENT_UNAVAILABLE', `@threefold/grid_client does not load: ${err && err.message}`, false)
    }
  }
  return grid
}

function fail(code, message, retryable, failover) {
  const e = new Error(message)
  e.gridCode = code
  e.retryable = retryable
  if (failover) e.failover = failover
  return e
}

const str = (x) => (typeof x === 'string' && x.length > 0)
function checkVm(p) {
  const bad = []
  if (!str(p.name) || !/^[a-z0-9][a-z0-9-]{0,62}$/.test(p.name)) bad.push('name')
  if (!Number.isInteger(p.nodeId) || p.nodeId <= 0) bad.push('nodeId')
  if (!Number.isInteger(p.cpu) || p.cpu <= 0) bad.push('cpu')
  if (!Number.isInteger(p.memoryMb) || p.memoryMb < 256) bad.push('memoryMb')
  if (!(p.rootfsGb >= 0) || !(p.diskGb >= 0)) bad.push('disk sizes')
  if (!str(p.flist) || !/^https:\/\//.test(p.flist)) bad.push('flist')
  if (!str(p.networkName) || !/^[a-z0-9]{1,15}$/.test(p.networkName)) bad.push('networkName')
  if (typeof p.env !== 'object' || p.env === null) bad.push('env')
  if (bad.length) throw fail('GRID_BAD_REQUEST', `invalid VM spec: ${bad.join(', ')}`, false)
}

const { buildVmDeployment } = require('./buildVm.cjs')
function buildVm(p) {
  checkVm(p)
  if (!opts) throw fail('GRID_NOT_INITIALIZED', 'init first', false)
  return buildVmDeployment(loadGrid(), p, opts.twinId || 0)
}

const ops = {
  async ping() {
    return { pid: process.pid, initialized: !!opts }
  },
  async init(p) {
    if (!p || !str(p.mnemonic) || !str(p.network)) throw fail('GRID_BAD_REQUEST', 'init needs mnemonic and network', false)
    opts = p
    if (p.connect === false) return { twinId: p.twinId ?? null, connected: false }
    const g = loadGrid()
    try {
      client = new g.GridClient({
        mnemonic: p.mnemonic,
        network: p.network,
        substrateURL: p.substrateUrl,
        relayURL: p.relayUrl,
        proxyURL: p.proxyUrl,
        ...(p.graphqlUrl && { graphqlURL: p.graphqlUrl }),
        ...(p.activationUrl && { activationURL: p.activationUrl }),
        ...(p.kycUrl && { KycURL: p.kycUrl }),
        backendStorageType: g.BackendStorageType ? g.BackendStorageType.tfkvstore : undefined,
        keepReconnectingToChain: false,
      })
      await client.connect()
    } catch (err) {
      client = undefined
      throw fail('GRID_CONNECT_FAILED', `grid connect failed: ${err && err.message ? String(err.message).split('\n')[0] : String(err)}`, true)
    }
    opts.twinId = client.twinId
    return { twinId: client.twinId, connected: true }
  },
  async buildVm(p) {
    const { deployment, workloads } = buildVm(p)
    const challengeHash = deployment.challenge_hash()
    await deployment.sign(opts.twinId || 0, opts.mnemonic, 'sr25519', challengeHash)
    return { deployment: JSON.parse(JSON.stringify(deployment)), challengeHash, workloads }
  },
  async deployVm(p) {
    checkVm(p)
    const c = connected()
    try {
      const res = await c.machines.deploy({
        name: p.name,
        network: { name: p.networkName, ip_range: '10.20.0.0/16' },
        machines: [
          {
            name: p.name,
            node_id: p.nodeId,
            disks: p.diskGb > 0 ? [{ name: `${p.name}d`, size: p.diskGb, mountpoint: '/data' }] : [],
            public_ip: p.publicIp,
            planetary: false,
            mycelium: true,
            cpu: p.cpu,
            memory: p.memoryMb,
            rootfs_size: p.rootfsGb,
            flist: p.flist,
            entrypoint: p.entrypoint,
            env: p.env,
          },
        ],
        metadata: JSON.stringify({ deploymentId: p.deploymentId }),
        description: `blueprint-operator ${p.deploymentId}`,
      })
      const contracts = []
      for (const k of ['created', 'updated']) for (const ct of (res.contracts && res.contracts[k]) || []) contracts.push({ contractId: String(ct.contractID ?? ct.contractId), kind: 'node', nodeId: ct.contractType?.nodeContract?.nodeId, deploymentName: p.name })
      const info = await c.machines.getObj({ name: p.name }).catch(() => [])
      const vm = Array.isArray(info) ? info[0] : undefined
      return { contracts, ...(vm && vm.publicIP && { publicIp: String(vm.publicIP.ip).split('/')[0] }), ...(vm && vm.interfaces && vm.interfaces[0] && { privateIp: vm.interfaces[0].ip }) }
    } catch (err) {
      throw classifyDeploy(err)
    }
  },
  async deleteVm(p) {
    if (!p || !str(p.name)) throw fail('GRID_BAD_REQUEST', 'deleteVm needs name', false)
    const c = connected()
    try {
      const res = await c.machines.delete({ name: p.name })
      return { cancelled: ((res && res.deleted) || []).map((x) => String(x.contractID ?? x.contractId ?? x)) }
    } catch (err) {
      throw fail('GRID_CANCEL_FAILED', `cancel ${p.name}: ${err && err.message}`, true)
    }
  },
  async cancelContracts(p) {
    if (!p || !Array.isArray(p.contractIds)) throw fail('GRID_BAD_REQUEST', 'cancelContracts needs contractIds', false)
    const c = connected()
    try {
      if (!p.contractIds.length) return { cancelled: [] }
      await c.contracts.batchCancelContracts({ ids: p.contractIds.map(Number) })
      return { cancelled: p.contractIds.map(String) }
    } catch (err) {
      throw fail('GRID_CANCEL_FAILED', `cancel ${p.contractIds.join(',')}: ${err && err.message}`, true)
    }
  },
  async listContracts() {
    const c = connected()
    const r = await c.contracts.listMyContracts()
    const out = []
    for (const n of r.nodeContracts || []) {
      let name
      try {
        name = JSON.parse(n.deploymentData || '{}').name
      } catch {}
      out.push({ contractId: String(n.contractID), kind: 'node', nodeId: Number(n.nodeID), ...(name && { deploymentName: name }) })
    }
    for (const n of r.nameContracts || []) out.push({ contractId: String(n.contractID), kind: 'name', name: n.name })
    for (const n of r.rentContracts || []) out.push({ contractId: String(n.contractID), kind: 'rent', nodeId: Number(n.nodeID) })
    return { contracts: out }
  },
  async balance() {
    const b = await connected().balance.getMyBalance()
    return { freeTft: String(b.free) }
  },
  async shutdown() {
    setImmediate(async () => {
      try {
        if (client) await client.disconnect()
      } catch {}
      process.exit(0)
    })
    return { ok: true }
  },
}

function connected() {
  if (!client) throw fail('GRID_NOT_INITIALIZED', 'not connected to the grid (init with connect)', false)
  return client
}

/** Capacity problems move placement to another node; everything else is a plain deploy failure. */
function classifyDeploy(err) {
  const msg = String((err && err.message) || err)
  if (/not enough|no enough|capacity|out of (memory|resources)|no free public ip|failed to reserve ip/i.test(msg)) {
    return fail('GRID_DEPLOY_FAILED', `deploy failed: ${msg.split('\n')[0]}`, false, { kind: 'capacity', scope: 'offer' })
  }
  if (/balance|insufficient|funds/i.test(msg)) return fail('GRID_DEPLOY_FAILED', `deploy failed: ${msg.split('\n')[0]}`, false, { kind: 'quota', scope: 'provider' })
  return fail('GRID_DEPLOY_FAILED', `deploy failed: ${msg.split('\n')[0]}`, true)
}

process.on('message', async (msg) => {
  if (!msg || typeof msg.id !== 'number') return
  const op = ops[msg.op]
  try {
    if (!op) throw fail('GRID_UNKNOWN_OP', `unknown op ${String(msg.op)}`, false)
    const result = await op(msg.params || {})
    process.send({ id: msg.id, ok: true, result })
  } catch (err) {
    const code = (err && err.gridCode) || 'GRID_DEPLOY_FAILED'
    const message = String((err && err.message) || err).split(opts ? opts.mnemonic : '\0').join('***')
    process.send({ id: msg.id, ok: false, error: { code, message, retryable: !!(err && err.retryable), ...(err && err.failover && { failover: err.failover }) } })
  }
})
process.on('disconnect', () => process.exit(0))
process.send({ type: 'ready', pid: process.pid })
