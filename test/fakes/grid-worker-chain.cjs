/**
 * A grid worker for tests that does grid_client's deploy path up to the Zero-OS node: it builds the VM's deployment
 * with the real grid_client primitives (provisioners/threefold/worker/buildVm.cjs), hashes and signs it with the
 * twin's mnemonic, and creates / cancels the node contracts for real on a TFChain runtime under chopsticks (signed
 * offline, put in a block with dev_newBlock: chopsticks cannot validate spec 61 transactions). What it does NOT do
 * is the edge: sending the deployment to the node over the RMB relay and waiting for Zero-OS to run it, so no VM
 * answers (the public IP TFChain reserved with the contract is reported). Same protocol as worker/gridWorker.cjs.
 *
 * Run as a script it stops at that edge; `serve(node)` (test/fakes/grid-worker-zos.cjs) hands each deployment to a
 * fake Zero-OS node instead (test/fakes/zos-node.cjs), which boots the VM and stops it when the contract goes.
 */
'use strict'
const { readFileSync } = require('node:fs')
const { join } = require('node:path')
const { buildVmDeployment } = require('../../provisioners/threefold/worker/buildVm.cjs')

const types = JSON.parse(readFileSync(join(__dirname, '../../../shared/fixtures/substrate/tfchain-qanet-spec61-types.json'), 'utf8'))
let api
let pair
let opts
let grid
/** A fake Zero-OS node that boots the deployments (serve(node)); undefined: stop at the edge. */
let node

const fail = (code, message, retryable, failover) => Object.assign(new Error(message), { gridCode: code, retryable, ...(failover && { failover }) })
const text = (hex) => Buffer.from(String(hex).replace(/^0x/, ''), 'hex').toString('utf8')

async function submit(txs) {
  const signed = []
  // the chain state nonce: chopsticks keeps a dropped (failed) extrinsic in its pool and counts it in accountNextIndex
  let nonce = (await api.query.system.account(pair.address)).nonce.toNumber()
  for (const tx of txs) signed.push((await tx.signAsync(pair, { nonce: nonce++, era: 0 })).toHex())
  const hash = await api._rpcCore.provider.send('dev_newBlock', [{ transactions: signed }])
  const block = await api.rpc.chain.getBlock(hash)
  const records = await api.query.system.events.at(hash)
  return { included: block.block.extrinsics.length - 1, events: records.map((r) => ({ name: `${r.event.section}.${r.event.method}`, data: r.event.data.toJSON() })) }
}

async function myContracts() {
  const out = []
  for (const [, v] of await api.query.smartContractModule.contracts.entries()) {
    const c = v.toJSON()
    if (!c || c.twin_id !== opts.twinId || !c.state || !('created' in c.state || 'gracePeriod' in c.state)) continue
    const t = c.contract_type
    if (t.nodeContract) {
      let name
      try {
        name = JSON.parse(text(t.nodeContract.deployment_data)).name
      } catch {}
      out.push({ contractId: String(c.contract_id), kind: 'node', nodeId: t.nodeContract.node_id, ...(name && { deploymentName: name }) })
    } else if (t.nameContract) out.push({ contractId: String(c.contract_id), kind: 'name', name: text(t.nameContract.name) })
  }
  return out
}

async function cancel(ids) {
  if (!ids.length) return []
  const r = await submit(ids.map((id) => api.tx.smartContractModule.cancelContract(BigInt(id))))
  if (r.included !== ids.length) throw fail('GRID_CANCEL_FAILED', `cancel ${ids.join(',')}: ${r.included} of ${ids.length} included`, true)
  // Zero-OS stops the workloads of a contract that is gone
  if (node) for (const id of ids) await node.stop(id)
  return ids
}

/** The fake node's side of `zos.deployment.deploy`: the deployment's hash must be its contract's on chain. */
async function handOver(contractId, deployment, hash, publicIp) {
  const c = (await api.query.smartContractModule.contracts(BigInt(contractId))).toJSON()
  const onChain = c && c.contract_type.nodeContract ? text(c.contract_type.nodeContract.deployment_hash) : undefined
  if (onChain !== hash) throw fail('GRID_DEPLOY_FAILED', `node refused deployment of contract ${contractId}: hash ${hash} is not the contract's ${onChain}`, true)
  try {
    node.boot({ contractId, deployment: JSON.parse(JSON.stringify(deployment)), ...(publicIp && { publicIp: text(publicIp.ip), gateway: text(publicIp.gateway) }) })
  } catch (err) {
    await cancel([contractId]).catch(() => {})
    throw fail('GRID_DEPLOY_FAILED', `node could not boot the VM: ${err.message}`, true)
  }
}

/** Stop the VMs whose contracts are no longer live (cancelled by anyone), as Zero-OS does. */
async function reconcileNode(live) {
  if (!node) return
  const ids = new Set(live.map((c) => c.contractId))
  for (const id of node.running()) if (!ids.has(id)) await node.stop(id)
}

const ops = {
  ping: async () => ({ pid: process.pid, initialized: !!api }),
  async init(p) {
    // like grid_client: the twin is the mnemonic's on chain (the supervisor compares it with the configured one)
    const { ApiPromise, WsProvider } = require('@polkadot/api')
    const { Keyring } = require('@polkadot/keyring')
    const { cryptoWaitReady } = require('@polkadot/util-crypto')
    grid = require('@threefold/grid_client')
    await cryptoWaitReady()
    pair = new Keyring({ type: 'sr25519' }).addFromUri(p.mnemonic)
    const provider = new WsProvider(p.substrateUrl, false)
    try {
      await provider.connect()
      api = await ApiPromise.create({ provider, types, noInitWarn: true, throwOnConnect: true })
    } catch (err) {
      await provider.disconnect().catch(() => {})
      throw fail('GRID_CONNECT_FAILED', `TFChain unreachable: ${err.message}`, true)
    }
    const twin = (await api.query.tfgridModule.twinIdByAccountID(pair.address)).toNumber()
    if (!twin) throw fail('GRID_CONNECT_FAILED', 'the mnemonic has no twin on this chain', false)
    opts = { ...p, twinId: twin }
    return { twinId: twin, connected: true }
  },
  async deployVm(p) {
    const { deployment, meta } = buildVmDeployment(grid, p, opts.twinId)
    const hash = deployment.challenge_hash()
    await deployment.sign(opts.twinId, opts.mnemonic, 'sr25519', hash)
    const r = await submit([api.tx.smartContractModule.createNodeContract(p.nodeId, meta, hash, p.publicIp ? 1 : 0)])
    const created = r.events.find((e) => e.name === 'smartContractModule.ContractCreated')
    if (!created) throw fail('GRID_DEPLOY_FAILED', `node ${p.nodeId} refused the contract`, false, { kind: 'capacity', scope: 'offer' })
    // TFChain reserves one of the farm's public IPv4 addresses with the contract (spec 61: in the created contract's
    // public_ips_list): the VM's address, known before it boots
    const list = created.data[0].contract_type.nodeContract.public_ips_list
    const ip = list && list[0] ? text(list[0].ip).split('/')[0] : undefined
    const contractId = String(created.data[0].contract_id)
    // the edge: grid_client would now send `deployment` to the node over RMB (zos.deployment.deploy) and poll it
    if (node) await handOver(contractId, deployment, hash, list && list[0])
    return { contracts: [{ contractId, kind: 'node', nodeId: p.nodeId, deploymentName: p.name }], ...(ip && { publicIp: ip }) }
  },
  async deleteVm(p) {
    const ids = (await myContracts()).filter((c) => c.deploymentName === p.name).map((c) => c.contractId)
    return { cancelled: await cancel(ids) }
  },
  cancelContracts: async (p) => ({ cancelled: await cancel(p.contractIds) }),
  async listContracts() {
    const contracts = await myContracts()
    await reconcileNode(contracts)
    return { contracts }
  },
  async balance() {
    const a = (await api.query.system.account(pair.address)).toJSON()
    return { freeTft: (Number(BigInt(a.data.free)) / 1e7).toString() }
  },
  async shutdown() {
    setImmediate(async () => {
      await api?.disconnect().catch(() => {})
      process.exit(0)
    })
    return { ok: true }
  },
}

/** Answer protocol.ts over the IPC channel; with `zosNode`, deployments are handed to it and its VMs die with us. */
function serve(zosNode) {
  node = zosNode
  process.on('message', async (m) => {
    const op = ops[m.op]
    try {
      if (!op) throw fail('GRID_UNKNOWN_OP', `unknown op ${m.op}`, false)
      process.send({ id: m.id, ok: true, result: await op(m.params) })
    } catch (err) {
      process.send({ id: m.id, ok: false, error: { code: err.gridCode || 'GRID_DEPLOY_FAILED', message: String(err.message), retryable: !!err.retryable, ...(err.failover && { failover: err.failover }) } })
    }
  })
  // the node runs in this process: its VMs go with it (a killed worker leaves no VM behind)
  process.on('exit', () => node && node.stopAllSync())
  process.on('disconnect', () => process.exit(0))
  process.send({ type: 'ready', pid: process.pid })
}

module.exports = { serve }
if (require.main === module) serve(undefined)
