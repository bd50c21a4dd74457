import { execFileSync, spawnSync } from 'node:child_process'
import { chmodSync, chownSync, mkdtempSync, readdirSync, readFileSync, rmSync, statfsSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, test } from 'vitest'
import { detectPodman, exitZeroElf } from './detect.js'
import { createPodman } from './podman.js'

describe('podman detection', () => {
  test.skipIf(process.arch !== 'x64' && process.arch !== 'arm64')('default: the probe executable runs and exits 0 on this CPU', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bpo-elf-'))
    try {
      writeFileSync(join(dir, 'true'), exitZeroElf()!)
      chmodSync(join(dir, 'true'), 0o755)
      expect(execFileSync(join(dir, 'true')).length).toBe(0)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  test('error: a missing binary is a reason, not a throw', async () => {
    const cap = await detectPodman(createPodman({ binary: '/nonexistent/podman', env: { PATH: '/usr/bin:/bin' } }))
    expect(cap).toEqual({ ok: false, reason: '/nonexistent/podman is not installed (not found on PATH)' })
  })

  test('error: a podman whose every run fails is refused with the error of each attempt', async () => {
    // a stand-in podman that answers version/info but cannot run anything (like crun on hybrid cgroups)
    const dir = mkdtempSync(join(tmpdir(), 'bpo-fakepodman-'))
    try {
      const bin = join(dir, 'podman')
      writeFileSync(bin, '#!/bin/sh\ncase $1 in version) echo 4.3.1 ;; info) echo crun ;; run) echo "Error: crun: cannot set rlimits: OCI permission denied" >&2; exit 126 ;; *) exit 0 ;; esac\n')
      chmodSync(bin, 0o755)
      const cap = await detectPodman(createPodman({ binary: bin, env: { PATH: '/usr/bin:/bin' } }))
      expect(cap.ok).toBe(false)
      expect(!cap.ok && cap.reason).toMatch(/cannot run a container here \(defaults: Error: crun: cannot set rlimits: OCI permission denied; --ulimit .*; --runtime runc/)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  test('error: rootless podman on cgroup v1 is refused before any run (it would drop every limit)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bpo-fakepodman-'))
    try {
      const bin = join(dir, 'podman')
      writeFileSync(bin, '#!/bin/sh\ncase $1 in version) echo 4.3.1 ;; info) echo runc true v1 ;; run) echo ran >> "$0.runs" ;; *) exit 0 ;; esac\n')
      chmodSync(bin, 0o755)
      const cap = await detectPodman(createPodman({ binary: bin, env: { PATH: '/usr/bin:/bin' } }))
      expect(cap).toEqual({ ok: false, reason: expect.stringMatching(/rootless on cgroup v1, where it cannot enforce CPU, memory or process limits/) })
      expect(() => execFileSync('cat', [`${bin}.runs`], { stdio: 'pipe' })).toThrow() // nothing was started
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  test('error: a run that succeeds but warns that the limits were ignored is refused', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bpo-fakepodman-'))
    try {
      const bin = join(dir, 'podman')
      writeFileSync(bin, '#!/bin/sh\ncase $1 in version) echo 4.3.1 ;; info) echo crun true v2 ;; run) echo "Resource limits are not supported and ignored on cgroups V1 rootless systems" >&2 ;; *) exit 0 ;; esac\n')
      chmodSync(bin, 0o755)
      const cap = await detectPodman(createPodman({ binary: bin, env: { PATH: '/usr/bin:/bin' } }))
      expect(cap).toEqual({ ok: false, reason: `${bin} runs containers here but ignores their limits (Resource limits are not supported and ignored on cgroups V1 rootless systems)` })
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  // the real podman, rootless: run as an unprivileged uid (no /etc/subuid entry: podman's single mapping) on this
  // machine's cgroup v1 hierarchy, where it would start containers with their limits silently dropped
  const cgroupV1 = (() => {
    try {
      return statfsSync('/sys/fs/cgroup').type !== 0x63677270 // CGROUP2_SUPER_MAGIC
    } catch {
      return false
    }
  })()
  const hasPodman = spawnSync('podman', ['--version']).status === 0
  test.skipIf(process.getuid?.() !== 0 || !cgroupV1 || !hasPodman)('error: the real podman run rootless on cgroup v1 is refused with the reason', { timeout: 120_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bpo-rootless-'))
    try {
      const home = join(dir, 'home')
      execFileSync('mkdir', ['-m', '0700', home])
      chownSync(home, 65534, 65534)
      chmodSync(dir, 0o755)
      const run = join(dir, 'run') // podman's rootless pause process writes its pid here
      execFileSync('mkdir', ['-m', '0700', run])
      chownSync(run, 65534, 65534)
      const bin = join(dir, 'podman-rootless')
      writeFileSync(bin, `#!/bin/sh\nexec setpriv --reuid 65534 --regid 65534 --clear-groups env HOME=${home} XDG_RUNTIME_DIR=${run} podman "$@"\n`)
      chmodSync(bin, 0o755)
      const info = execFileSync(bin, ['info', '--format', '{{.Host.Security.Rootless}} {{.Host.CgroupsVersion}}'], { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
      expect(info.trim()).toBe('true v1') // the premise: podman really is rootless here
      const cap = await detectPodman(createPodman({ binary: bin, env: { PATH: '/usr/bin:/bin:/usr/sbin:/sbin' } }))
      expect(cap).toEqual({ ok: false, reason: `${bin} is rootless on cgroup v1, where it cannot enforce CPU, memory or process limits (use cgroup v2 with the cpu, memory and pids controllers delegated, or root)` })
    } finally {
      for (const f of findPauseFiles(dir)) {
        try {
          process.kill(Number(readFileSync(f, 'utf8').trim()), 'SIGKILL')
        } catch {
          // already gone
        }
      }
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

/** pause.pid files under `dir` (rootless podman's long-lived user-namespace holder). */
function findPauseFiles(dir: string): string[] {
  return (readdirSync(dir, { recursive: true }) as string[]).filter((p) => p.endsWith('pause.pid')).map((p) => join(dir, p))
}
