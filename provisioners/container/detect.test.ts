import { execFileSync } from 'node:child_process'
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
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
})
