/**
 * A fake Zero-OS node for tests: it runs the zmachine workload of a grid deployment (built and signed by
 * grid_client's own primitives, for a node contract that exists on TFChain) as a real local "VM", and stops it when
 * the contract is cancelled. Real Zero-OS receives the deployment over the RMB relay, checks its hash against the
 * contract's deployment hash on chain, fetches the flist and boots a micro VM; this fake receives it by a function
 * call, checks the hash the same way (the caller reads the contract), ignores the flist (the VM's root filesystem is
 * this machine's /usr, /etc, /bin and /lib, read-only) and boots:
 *
 * - a network namespace whose only interface carries the contract's public IPv4 (the address TFChain reserved from
 *   the farm, with its prefix) and a default route to the farm's gateway; this machine routes the address to it, so
 *   whoever holds the address can reach the VM, and the VM reaches this machine's addresses through the gateway (a
 *   test puts the farm's gateway address on this machine);
 * - PID and mount namespaces, a chroot with a private /tmp and the zmount disk at its mountpoint (/data);
 * - the zmachine's `entrypoint` run by /bin/sh with exactly the zmachine's `env` (plus a default PATH, as Zero-OS's
 *   init gives one), its output in the VM's console file.
 *
 * Root only (network namespaces). Stopping kills every process of the VM (PID namespace) and removes its network.
 */
'use strict'
const { spawn, execFileSync } = require('node:child_process')
const { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync } = require('node:fs')
const { tmpdir } = require('node:os')
const { join } = require('node:path')

const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

// inside the VM's mount namespace: $1 root, $2 disk dir, $3 disk mountpoint, $4 entrypoint
const BOOT = `set -e
R="$1"
for d in usr etc bin sbin lib lib32 lib64 libx32; do
  if [ -L "/$d" ]; then ln -s "$(readlink "/$d")" "$R/$d"
  elif [ -d "/$d" ]; then mkdir -p "$R/$d"; mount --bind "/$d" "$R/$d"; mount -o remount,bind,ro "$R/$d" 2>/dev/null || true; fi
done
mkdir -p "$R/proc" "$R/dev" "$R/tmp" "$R/root" "$R/run" "$R$3"
mount -t proc proc "$R/proc"
mount --bind /dev "$R/dev"
mount -t tmpfs vm-tmp "$R/tmp"
mount --bind "$2" "$R$3"
cd "$R"
exec chroot "$R" /bin/sh -c "cd / && exec $4"
`

const ip = (...args) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] })

function createZosNode() {
  /** contractId -> VM */
  const vms = new Map()

  /**
   * Boot the zmachine of `deployment` (grid_client's Deployment as JSON) for node contract `contractId`.
   * `publicIp`: the contract's reserved address with its prefix ("10.231.7.10/24"), `gateway` the farm's.
   */
  function boot({ contractId, deployment, publicIp, gateway }) {
    if (vms.has(contractId)) return vms.get(contractId)
    const zm = deployment.workloads.find((w) => w.type === 'zmachine')
    if (!zm) throw new Error('the deployment has no zmachine workload')
    const mount = (zm.data.mounts || [])[0]
    const tag = `${process.pid.toString(36)}${contractId}`.slice(-9)
    const ns = `bpozos-${tag}`
    const dir = mkdtempSync(join(tmpdir(), 'bpo-zos-vm-'))
    const root = join(dir, 'root')
    const disk = join(dir, 'disk')
    mkdirSync(root)
    mkdirSync(disk)
    ip('netns', 'add', ns)
    try {
      ip('-n', ns, 'link', 'set', 'lo', 'up')
      if (publicIp) {
        ip('link', 'add', `zh${tag}`, 'type', 'veth', 'peer', 'name', `zv${tag}`)
        ip('link', 'set', `zv${tag}`, 'netns', ns)
        ip('link', 'set', `zh${tag}`, 'up')
        ip('route', 'add', `${publicIp.split('/')[0]}/32`, 'dev', `zh${tag}`)
        ip('-n', ns, 'addr', 'add', publicIp.includes('/') ? publicIp : `${publicIp}/32`, 'dev', `zv${tag}`)
        ip('-n', ns, 'link', 'set', `zv${tag}`, 'up')
        if (gateway) ip('-n', ns, 'route', 'add', 'default', 'via', gateway, 'dev', `zv${tag}`, 'onlink')
      }
    } catch (err) {
      try {
        ip('netns', 'del', ns)
      } catch {}
      rmSync(dir, { recursive: true, force: true })
      throw new Error(`the fake node could not make the VM's network: ${err.stderr ? String(err.stderr) : err.message}`)
    }
    const consoleFile = join(dir, 'console.log')
    const out = openSync(consoleFile, 'a')
    const child = spawn(
      'nsenter',
      [`--net=/run/netns/${ns}`, 'unshare', '--mount', '--pid', '--fork', '--mount-proc', '--kill-child', '--propagation', 'private', 'sh', '-c', BOOT, 'zos-vm', root, disk, mount ? mount.mountpoint : '/data', zm.data.entrypoint],
      { env: { PATH, ...zm.data.env }, stdio: ['ignore', out, out] },
    )
    closeSync(out)
    const vm = { contractId, name: zm.name, ns, dir, consoleFile, child, exited: false, address: publicIp ? publicIp.split('/')[0] : undefined }
    child.once('exit', () => (vm.exited = true))
    vms.set(contractId, vm)
    return vm
  }

  /** Stop the VM of `contractId` (a cancelled contract); nothing when there is none. */
  async function stop(contractId) {
    const vm = vms.get(contractId)
    if (!vm) return
    vms.delete(contractId)
    if (!vm.exited) {
      const gone = new Promise((r) => vm.child.once('exit', r))
      // --kill-child: the PID namespace's init dies with unshare, and every process of the VM with it
      vm.child.kill('SIGKILL')
      await Promise.race([gone, new Promise((r) => setTimeout(r, 5000))])
    }
    cleanup(vm)
  }

  function cleanup(vm) {
    try {
      ip('netns', 'del', vm.ns)
    } catch {}
    rmSync(vm.dir, { recursive: true, force: true })
  }

  /** Stop every VM now (the node goes away with the process that runs it). */
  function stopAllSync() {
    for (const vm of vms.values()) {
      try {
        vm.child.kill('SIGKILL')
      } catch {}
      cleanup(vm)
    }
    vms.clear()
  }

  return {
    boot,
    stop,
    stopAllSync,
    /** Contract ids with a VM. */
    running: () => [...vms.keys()],
    console: (contractId) => {
      const vm = vms.get(contractId)
      return vm ? readFileSync(vm.consoleFile, 'utf8') : ''
    },
  }
}

module.exports = { createZosNode }
