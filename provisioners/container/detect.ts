/**
 * Whether podman really runs containers here, found by running one: a one-file root filesystem (a 129-byte static
 * ELF that exits 0, written here, nothing pulled) started with the limits, labels-free, a published port and the
 * default network, exactly as replicas are. `podman info` alone passes where the OCI runtime then fails (crun on
 * hybrid cgroups, refused default rlimits), so the run decides; the arguments that made it pass are kept and used
 * for every replica (e.g. explicit `--ulimit`s, `--runtime runc`).
 */
import { randomBytes } from 'node:crypto'
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Podman } from './podman.js'

export type PodmanCapability =
  | {
      ok: true
      /** podman's version. */
      version: string
      /** Arguments every `run` gets (runtime, ulimits) because the check passed with them. */
      runArgs: string[]
      /** True when the check started a container (false: `podman info` only, on a CPU without a built-in probe). */
      ranContainer: boolean
    }
  | { ok: false; reason: string }

/** Explicit rlimits where the runtime's defaults are refused (MACHINE-NOTES: hybrid cgroups, crun). */
export const FALLBACK_ULIMITS = ['--ulimit', 'nofile=20000:20000', '--ulimit', 'nproc=32768:32768'] as const

/** The argument sets tried in order; the first that runs the probe wins. */
export const CANDIDATE_RUN_ARGS: readonly (readonly string[])[] = [[], [...FALLBACK_ULIMITS], ['--runtime', 'runc', ...FALLBACK_ULIMITS]]

/** A static executable that calls exit(0) for this CPU, or undefined. */
export function exitZeroElf(arch: string = process.arch): Buffer | undefined {
  const code =
    arch === 'x64'
      ? Buffer.from([0x31, 0xff, 0xb8, 0x3c, 0, 0, 0, 0x0f, 0x05]) // xor edi,edi; mov eax,60; syscall
      : arch === 'arm64'
        ? Buffer.from([0x00, 0x00, 0x80, 0xd2, 0xa8, 0x0b, 0x80, 0xd2, 0x01, 0x00, 0x00, 0xd4]) // mov x0,#0; mov x8,#93; svc #0
        : undefined
  if (!code) return undefined
  const b = Buffer.alloc(120 + code.length)
  b.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0], 0) // ELF64, little endian
  b.writeUInt16LE(2, 16) // ET_EXEC
  b.writeUInt16LE(arch === 'x64' ? 0x3e : 0xb7, 18)
  b.writeUInt32LE(1, 20)
  b.writeBigUInt64LE(0x400000n + 120n, 24) // entry
  b.writeBigUInt64LE(64n, 32) // program headers right after the header
  b.writeUInt16LE(64, 52)
  b.writeUInt16LE(56, 54)
  b.writeUInt16LE(1, 56)
  b.writeUInt32LE(1, 64) // PT_LOAD
  b.writeUInt32LE(5, 68) // R+X
  b.writeBigUInt64LE(0x400000n, 80)
  b.writeBigUInt64LE(0x400000n, 88)
  b.writeBigUInt64LE(BigInt(b.length), 96)
  b.writeBigUInt64LE(BigInt(b.length), 104)
  b.writeBigUInt64LE(0x1000n, 112)
  code.copy(b, 120)
  return b
}

/** podman's warning when it starts a container without the limits it was given (e.g. rootless without cgroup delegation). */
const LIMITS_IGNORED = /limits? (are |is )?not supported and ignored|resource limits .*ignored/i

const firstLine = (s: string) => s.trim().split('\n').filter(Boolean).slice(-1)[0]?.slice(0, 300) ?? ''

/** Detect whether `podman` runs containers on this machine; never throws (a failure is `{ ok: false, reason }`). */
export async function detectPodman(podman: Podman, o: { signal?: AbortSignal; timeoutMs?: number; workDir?: string } = {}): Promise<PodmanCapability> {
  const timeoutMs = o.timeoutMs ?? 60_000
  try {
    const v = await podman.exec(['version', '--format', '{{.Client.Version}}'], { signal: o.signal, timeoutMs })
    if (v.code === 127) return { ok: false, reason: `${podman.binary} is not installed (not found on PATH)` }
    if (v.code !== 0) return { ok: false, reason: `${podman.binary} version failed: ${firstLine(v.stderr)}` }
    const version = v.stdout.trim()
    const info = await podman.exec(['info', '--format', '{{.Host.OCIRuntime.Name}} {{.Host.Security.Rootless}} {{.Host.CgroupsVersion}}'], { signal: o.signal, timeoutMs })
    if (info.code !== 0) return { ok: false, reason: `${podman.binary} info failed: ${firstLine(info.stderr)}` }
    const [, rootless, cgroups] = info.stdout.trim().split(/\s+/)
    // rootless podman on cgroup v1 starts containers but drops --memory/--cpus/--pids-limit with a warning: a
    // replica would run without the ResourceSpec's limits, so containers are not offered at all
    if (rootless === 'true' && cgroups === 'v1')
      return { ok: false, reason: `${podman.binary} is rootless on cgroup v1, where it cannot enforce CPU, memory or process limits (use cgroup v2 with the cpu, memory and pids controllers delegated, or root)` }
    const elf = exitZeroElf()
    if (!elf) return { ok: true, version, runArgs: [], ranContainer: false }
    const base = o.workDir ?? tmpdir()
    await mkdir(base, { recursive: true })
    const dir = await mkdtemp(join(base, 'bpo-podman-probe-'))
    try {
      const root = join(dir, 'root')
      await mkdir(root, { mode: 0o755 })
      await writeFile(join(root, 'true'), elf)
      await chmod(join(root, 'true'), 0o755)
      const failures: string[] = []
      for (const extra of CANDIDATE_RUN_ARGS) {
        const name = `bpo-probe-${randomBytes(4).toString('hex')}`
        const r = await podman.exec(
          ['run', '--rm', '--name', name, '-p', '127.0.0.1::9', '--memory', '64m', '--cpus', '0.1', '--pids-limit', '16', '--http-proxy=false', '--security-opt', 'no-new-privileges', ...extra, '--rootfs', root, '/true'],
          { signal: o.signal, timeoutMs },
        )
        if (r.code === 0 && LIMITS_IGNORED.test(r.stderr))
          return { ok: false, reason: `${podman.binary} runs containers here but ignores their limits (${firstLine(r.stderr.split('\n').find((l) => LIMITS_IGNORED.test(l)) ?? '')})` }
        if (r.code === 0) return { ok: true, version, runArgs: [...extra], ranContainer: true }
        await podman.exec(['rm', '-f', name], { timeoutMs: 10_000 }).catch(() => undefined)
        failures.push(`${extra.length ? extra.join(' ') : 'defaults'}: ${firstLine(r.stderr) || `exit ${r.code}`}`)
      }
      return { ok: false, reason: `${podman.binary} cannot run a container here (${failures.join('; ')})` }
    } finally {
      await rm(dir, { recursive: true, force: true }).catch(() => undefined)
    }
  } catch (err) {
    return { ok: false, reason: `podman check failed: ${(err as Error)?.message ?? String(err)}` }
  }
}

const memo = new Map<string, Promise<PodmanCapability>>()

/**
 * detectPodman once per process for the same binary and environment: the answer is a fact about this machine, and
 * every provisioner instance (tests make many) would otherwise start its own probe container.
 */
export function detectPodmanOnce(podman: Podman & { env?: Record<string, string> }, o: { signal?: AbortSignal; workDir?: string } = {}): Promise<PodmanCapability> {
  const key = JSON.stringify([podman.binary, podman.env ?? null])
  let got = memo.get(key)
  if (!got) {
    got = detectPodman(podman, o)
    memo.set(key, got)
    // an aborted check is not an answer about the machine
    void got.then((c) => !c.ok && o.signal?.aborted && memo.get(key) === got && memo.delete(key))
  }
  return got
}
