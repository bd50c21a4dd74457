/**
 * The Zero-OS deployment of one VM, built with grid_client's own primitives and no network: a data disk (zmount),
 * a public IP when asked, and the zmachine. The network workload needs the node's WireGuard port, which only the node
 * answers over RMB: grid_client builds it inside `machines.deploy`, not here.
 */
'use strict'

function buildVmDeployment(g, p, twinId) {
  const meta = JSON.stringify({ type: 'vm', name: p.name, projectName: p.deploymentId })
  const workloads = []
  const disks = []
  if (p.diskGb > 0) {
    const d = new g.DiskPrimitive()
    workloads.push(d.create(p.diskGb, `${p.name}d`, meta))
    disks.push(d.createMount(`${p.name}d`, '/data'))
  }
  if (p.publicIp) workloads.push(new g.PublicIPPrimitive().create(`${p.name}ip`, meta, '', 0, true, false))
  // 10.20.2.2: the VM's address in the deployment's private network
  workloads.push(new g.VMPrimitive().create(p.name, p.flist, p.cpu, p.memoryMb, p.rootfsGb, disks, p.networkName, '10.20.2.2', false, true, '', p.publicIp ? `${p.name}ip` : '', p.entrypoint, p.env, meta))
  const deployment = new g.DeploymentFactory({ twinId }).create(workloads, 1626394539, meta, `blueprint-operator ${p.deploymentId}`, 0)
  return { deployment, meta, workloads: workloads.map((w) => ({ type: String(w.type), name: w.name })) }
}

module.exports = { buildVmDeployment }
