import { spawn } from 'node:child_process'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { detectCgroups } from './cgroups.js'

// the kernel's semantics are covered by local.test.ts on this host (v1); these check detection and the files written
// on a unified (v2) layout and on hosts without usable cgroups, using a directory tree shaped like /sys/fs/cgroup
let dir: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bpo-cgroups-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

async function layout(name: string, files: Record<string, string>) {
  const root = join(dir, name)
  for (const [path, content] of Object.entries(files)) {
    await mkdir(join(root, path, '..'), { recursive: true })
    await writeFile(join(root, path), content)
  }
  return root
}

describe('detectCgroups', () => {
  test('default: cgroup v2 with delegated controllers writes memory.max, cpu.max and pids.max under the own cgroup', async () => {
    const root = await layout('v2', {
      'cgroup.controllers': 'cpuset cpu io memory hugetlb pids rdma misc\n',
      'system.slice/bpo.service/cgroup.subtree_control': '',
    })
    const self = join(dir, 'v2-self')
    await writeFile(self, '0::/system.slice/bpo.service\n')
    const cg = await detectCgroups({ mode: 'auto', owner: 'op1', root, selfCgroupFile: self })
    expect(cg.mode).toBe('v2')
    const procs = await cg.prepare('bp-1-7', 0, { vcpu: 1.5, memoryGiB: 0.5, pidsMax: 256 })
    const leaf = join(root, 'system.slice/bpo.service/blueprint-operator/op-op1/bp-1-7/0')
    expect(procs).toEqual([join(leaf, 'cgroup.procs')])
    expect(await readFile(join(leaf, 'memory.max'), 'utf8')).toBe(String(512 * 1024 * 1024))
    expect(await readFile(join(leaf, 'cpu.max'), 'utf8')).toBe('150000 100000')
    expect(await readFile(join(leaf, 'pids.max'), 'utf8')).toBe('256')
    expect(await readFile(join(root, 'system.slice/bpo.service/cgroup.subtree_control'), 'utf8')).toBe('+memory +cpu +pids')
    expect(await readFile(join(root, 'system.slice/bpo.service/blueprint-operator/op-op1/bp-1-7/cgroup.subtree_control'), 'utf8')).toBe('+memory +cpu +pids')
  })

  test('args: zero vcpu and memory set no CPU or memory limit', async () => {
    const root = await layout('v2-nolimits', { 'cgroup.controllers': 'cpu memory pids\n', 'cgroup.subtree_control': '' })
    const self = join(dir, 'v2-nolimits-self')
    await writeFile(self, '0::/\n')
    const cg = await detectCgroups({ mode: 'auto', owner: 'op1', root, selfCgroupFile: self })
    const [procs] = await cg.prepare('bp-2', 1, { vcpu: 0, memoryGiB: 0, pidsMax: 64 })
    const leaf = join(procs!, '..')
    await expect(readFile(join(leaf, 'memory.max'), 'utf8')).rejects.toThrow()
    await expect(readFile(join(leaf, 'cpu.max'), 'utf8')).rejects.toThrow()
    expect(await readFile(join(leaf, 'pids.max'), 'utf8')).toBe('64')
  })

  test('behavior: v2 kill writes cgroup.kill, SIGKILLs what is listed and reports populated groups of this operator only', async () => {
    const root = await layout('v2-kill', { 'cgroup.controllers': 'cpu memory pids\n', 'cgroup.subtree_control': '' })
    const self = join(dir, 'v2-kill-self')
    await writeFile(self, '0::/\n')
    const cg = await detectCgroups({ mode: 'auto', owner: 'op1', root, selfCgroupFile: self })
    const other = await detectCgroups({ mode: 'auto', owner: 'op2', root, selfCgroupFile: self })
    const [procs] = await cg.prepare('bp-9', 0, { vcpu: 0, memoryGiB: 0, pidsMax: 64 })
    const leaf = join(procs!, '..')
    await writeFile(join(leaf, 'cgroup.kill'), '0')
    // the kernel would list the members; here a real child process stands in for one
    const child = spawn('sleep', ['300'], { stdio: 'ignore' })
    const exited = new Promise((r) => child.once('exit', (_code, sig) => r(sig)))
    await writeFile(procs!, `${child.pid}\n`)
    expect(await cg.populated()).toEqual([{ deploymentId: 'bp-9', replica: '0', dir: leaf, pids: [child.pid] }])
    expect(await other.populated()).toEqual([])
    expect(await cg.killDeployment('bp-9')).toEqual([])
    expect(await exited).toBe('SIGKILL')
    expect(await readFile(join(leaf, 'cgroup.kill'), 'utf8')).toBe('1')
    expect(await cg.populated()).toEqual([])
  })

  test('behavior: v2 without the needed controllers, v1 not mounted, or off: no limits with a reason, never a throw', async () => {
    const self = join(dir, 'plain-self')
    await writeFile(self, '0::/\n')
    const v2 = await layout('v2-partial', { 'cgroup.controllers': 'cpuset io\n' })
    expect(await detectCgroups({ mode: 'auto', owner: 'op1', root: v2, selfCgroupFile: self })).toMatchObject({ mode: 'none', reason: expect.stringContaining('memory') })
    const empty = await layout('nothing', { 'README': '' })
    expect(await detectCgroups({ mode: 'auto', owner: 'op1', root: empty, selfCgroupFile: self })).toMatchObject({ mode: 'none', reason: expect.stringContaining('not mounted') })
    expect(await detectCgroups({ mode: 'auto', owner: 'op1', root: empty, selfCgroupFile: join(dir, 'missing') })).toMatchObject({ mode: 'none' })
    const off = await detectCgroups({ mode: 'off', owner: 'op1' })
    expect(off.mode).toBe('none')
    expect(await off.prepare('x', 0, { vcpu: 1, memoryGiB: 1, pidsMax: 1 })).toEqual([])
  })
})
