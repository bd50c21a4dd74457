/**
 * The host agent script run directly (no SSH) against fake `systemd-run`, `systemctl` and `docker` binaries that
 * record their argv: the systemd and docker paths cannot run live on this machine (no systemd as PID 1, no docker
 * engine), so their exact argument vectors are checked here. Also the host-side sha256 check of uploads.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { HOST_LOADER, HOST_SCRIPT, HOST_SCRIPT_SHA256 } from '../../provisioners/ssh/hostScript.js'
import { quoteWord } from '../../provisioners/ssh/shellQuote.js'

let dir: string
let script: string
let fakes: string

// fakes: append their argv (NUL after each word, SOH after each call) to $FAKE_LOG/<name>.argv; `systemctl is-active` answers "inactive"
const FAKE = (name: string) => `#!/bin/sh
for a in "$@"; do printf '%s\\0' "$a"; done >> "$FAKE_LOG/${name}.argv"
printf '\\001' >> "$FAKE_LOG/${name}.argv"
# FAKE_ACTIVE: a unit that stays active whatever is asked
[ -n "\${FAKE_ACTIVE:-}" ] && case "$1 $2" in "is-active --quiet"|"--user is-active") exit 0 ;; esac
case "$1 $2" in
  "is-active --quiet"|"--user is-active") exit 3 ;;
  "inspect --format") exit 1 ;;
esac
[ "$1" = run ] && echo fakecontainerid
exit 0
`

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'bpo-agent-'))
  script = join(dir, 'agent.sh')
  writeFileSync(script, HOST_SCRIPT)
  fakes = join(dir, 'fakes')
  mkdirSync(fakes)
  for (const n of ['systemd-run', 'systemctl', 'docker', 'curl']) {
    writeFileSync(join(fakes, n), FAKE(n))
    chmodSync(join(fakes, n), 0o755)
  }
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** The agent as the daemon runs it: through the loader, with the script's expected digest. */
const loaded = (args: string[], path = script) => ['-c', HOST_LOADER, path, HOST_SCRIPT_SHA256, ...args]

function agent(args: string[], stdin = '', env: Record<string, string> = {}) {
  return spawnSync('sh', loaded(args), {
    input: stdin,
    encoding: 'utf8',
    env: { PATH: `${fakes}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin`, FAKE_LOG: dir, ...env },
  })
}
const calls = (name: string): string[][] =>
  existsSync(join(dir, `${name}.argv`))
    ? readFileSync(join(dir, `${name}.argv`), 'utf8')
        .split('\u0001')
        .filter(Boolean)
        .map((l) => l.split('\0').slice(0, -1))
    : []

describe('host agent script', () => {
  test('behavior: systemd mode starts one transient unit with limits and restart policy (fake systemd-run)', () => {
    const memoryKey = existsSync('/sys/fs/cgroup/cgroup.controllers') ? 'MemoryMax' : 'MemoryLimit'
    const dep = join(dir, 'ops', 'op', 'bp-1')
    const r = agent(['start', dep, '0', 'systemd-system', 'bpo-abc-bp-1-r0', '/opt/bin/x', 'bpo-abc-bp-1-r0', '268435456', '150000', '20001'], "export A='1'\n")
    expect(r.status).toBe(0)
    expect(r.stdout.trim()).toBe('started')
    expect(calls('systemd-run')).toEqual([
      [
        '--unit=bpo-abc-bp-1-r0',
        '--collect',
        '-p', 'Restart=always',
        '-p', 'RestartSec=2',
        '-p', 'KillMode=control-group',
        '-p', `${memoryKey}=268435456`,
        '-p', 'CPUQuota=150%',
        '--description=blueprint-operator replica 0 of bp-1',
        'sh', '-c', HOST_LOADER, script, HOST_SCRIPT_SHA256, 'run', join(dep, 'replicas', '0'), '/opt/bin/x',
      ],
    ])
    expect(readFileSync(join(dep, 'replicas', '0', 'mode'), 'utf8').trim()).toBe('systemd-system')
    expect(readFileSync(join(dep, 'replicas', '0', 'port'), 'utf8').trim()).toBe('20001')
    const stop = agent(['stop', dep, '0', '5'])
    expect(stop.stdout.trim()).toBe('stopped')
    expect(calls('systemctl').slice(-3)).toEqual([
      ['stop', 'bpo-abc-bp-1-r0'],
      ['is-active', '--quiet', 'bpo-abc-bp-1-r0'],
      ['reset-failed', 'bpo-abc-bp-1-r0'],
    ])
  })

  test('error: stopping a systemd unit that stays active fails, and destroy keeps the deployment (fake systemctl)', () => {
    const dep = join(dir, 'ops', 'op', 'bp-6')
    expect(agent(['start', dep, '0', 'systemd-system', 'bpo-abc-bp-6-r0', '/opt/bin/x', 'bpo-abc-bp-6-r0', '0', '0', '20006']).status).toBe(0)
    const stop = agent(['stop', dep, '0', '5', 'bpo-abc-bp-6-r0'], '', { FAKE_ACTIVE: '1' })
    expect({ status: stop.status, out: stop.stdout.trim() }).toEqual({ status: 1, out: '' })
    expect(stop.stderr).toContain('still active')
    expect(calls('systemctl').at(-1)).toEqual(['is-active', '--quiet', 'bpo-abc-bp-6-r0'])
    const destroy = agent(['destroy', dep, '5', 'bpo-abc-bp-6-r'], '', { FAKE_ACTIVE: '1' })
    expect(destroy.status).toBe(1)
    expect(existsSync(join(dep, 'manifest.json')) || existsSync(join(dep, 'replicas', '0'))).toBe(true)
    // once the unit is gone, stop and destroy succeed
    expect(agent(['stop', dep, '0', '5', 'bpo-abc-bp-6-r0']).stdout.trim()).toBe('stopped')
    expect(agent(['destroy', dep, '5', 'bpo-abc-bp-6-r']).stdout.trim()).toBe('destroyed')
    expect(existsSync(dep)).toBe(false)
  })

  test('behavior: systemd user mode uses the user manager', () => {
    const dep = join(dir, 'ops', 'op', 'bp-2')
    const r = agent(['start', dep, '1', 'systemd-user', 'u1', '/opt/bin/x', 'u1', '0', '0', '20002'])
    expect(r.status).toBe(0)
    const last = calls('systemd-run').at(-1)!
    expect(last.slice(0, 3)).toEqual(['--user', '--unit=u1', '--collect'])
    expect(last.join(' ')).not.toMatch(/Memory|CPUQuota/)
  })

  test('behavior: docker mode passes the run arguments through untouched (fake docker)', () => {
    const dep = join(dir, 'ops', 'op', 'bp-3')
    const args = ['--label', 'io.blueprint-operator.owner=op', '-e', 'A=$(touch /tmp/x) `y` ; z', '-e', "B='\"\n", 'img@sha256:' + 'c'.repeat(64)]
    const r = agent(['start', dep, '0', 'docker', 'bpo-t-bp-3-r0', '-', 'bpo-t-bp-3-r0', '0', '0', '20003', ...args])
    expect(r.status).toBe(0)
    expect(calls('docker').filter((c) => c[0] === 'run')).toEqual([['run', '-d', '--name', 'bpo-t-bp-3-r0', ...args]])
  })

  test('behavior: run gives the workload exactly the env file, from a clean environment, in its data dir', () => {
    const dep = join(dir, 'ops', 'op', 'bp-4')
    const rdir = join(dep, 'replicas', '0')
    const data = join(dep, 'data', '0')
    mkdirSync(rdir, { recursive: true })
    mkdirSync(data, { recursive: true })
    const hostile = `$(touch ${join(dir, 'PWNED')}) \`id\` ; "'\n\\ ü`
    writeFileSync(join(rdir, 'env.sh'), `export DATA_DIR=${quoteWord(data)}\nexport V=${quoteWord(hostile)}\n`)
    const text = '#!/bin/sh\npwd > out.pwd\nenv -0 > out.env\n'
    const bin = join(dir, createHash('sha256').update(text).digest('hex'))
    writeFileSync(bin, text)
    chmodSync(bin, 0o755)
    const r = spawnSync('sh', loaded(['run', rdir, bin]), { encoding: 'utf8', env: { PATH: process.env.PATH, SECRET_OF_SESSION: 'leak' } })
    expect(r.status).toBe(0)
    expect(readFileSync(join(data, 'out.pwd'), 'utf8').trim()).toBe(data)
    const env = Object.fromEntries(
      readFileSync(join(data, 'out.env'), 'utf8')
        .split('\0')
        .filter(Boolean)
        .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
    )
    expect(env.V).toBe(hostile)
    expect(env.SECRET_OF_SESSION).toBeUndefined()
    expect(existsSync(join(dir, 'PWNED'))).toBe(false)
  })

  test('error: an upload whose bytes do not match is deleted on the host and never made executable', () => {
    const root = join(dir, 'root')
    mkdirSync(join(root, 'artifacts'), { recursive: true })
    const good = '#!/bin/sh\necho good\n'
    const sum = createHash('sha256').update(good).digest('hex')
    const tmp = join(root, 'artifacts', '.upload.x')
    writeFileSync(tmp, '#!/bin/sh\necho evil\n')
    const bad = agent(['artifact', root, sum, 'upload', tmp])
    expect(bad.status).toBe(20)
    expect(existsSync(tmp)).toBe(false)
    expect(existsSync(join(root, 'artifacts', sum))).toBe(false)
    expect(execFileSync('ls', ['-A', join(root, 'artifacts')], { encoding: 'utf8' })).toBe('')

    writeFileSync(tmp, good)
    const ok = agent(['artifact', root, sum, 'upload', tmp])
    expect({ status: ok.status, out: ok.stdout.trim() }).toEqual({ status: 0, out: 'verified' })
    expect(readFileSync(join(root, 'artifacts', sum), 'utf8')).toBe(good)
    expect(agent(['artifact', root, sum, 'check', '-']).status).toBe(0)
    // a cached file that no longer matches is dropped, not used
    writeFileSync(join(root, 'artifacts', sum), 'tampered')
    expect(agent(['artifact', root, sum, 'check', '-']).status).toBe(23)
    expect(existsSync(join(root, 'artifacts', sum))).toBe(false)
  })

  test('error: a modified agent file is refused by the loader and none of it runs', () => {
    const marker = join(dir, 'AGENT-PWNED')
    const tampered = join(dir, 'tampered-agent.sh')
    writeFileSync(tampered, `${HOST_SCRIPT}\ntouch '${marker}'\n`)
    const r = spawnSync('sh', loaded(['facts'], tampered), { encoding: 'utf8' })
    expect(r.status).toBe(198)
    expect(r.stdout).toBe('')
    expect(existsSync(marker)).toBe(false)
    // a file that differs only in a trailing newline is another file
    writeFileSync(tampered, `${HOST_SCRIPT}\n`)
    expect(spawnSync('sh', loaded(['facts'], tampered)).status).toBe(198)
    expect(spawnSync('sh', loaded(['facts'], join(dir, 'no-such-agent.sh'))).status).toBe(197)
    expect(agent(['facts']).stdout).toMatch(/^uid=/)
  })

  test('error: run refuses an artifact whose bytes no longer match its sha256 name', () => {
    const rdir = join(dir, 'ops', 'op', 'bp-5', 'replicas', '0')
    const data = join(dir, 'ops', 'op', 'bp-5', 'data', '0')
    mkdirSync(rdir, { recursive: true })
    mkdirSync(data, { recursive: true })
    writeFileSync(join(rdir, 'env.sh'), `export DATA_DIR=${quoteWord(data)}\n`)
    const marker = join(dir, 'BIN-PWNED')
    const bin = join(dir, createHash('sha256').update('#!/bin/sh\nexit 0\n').digest('hex'))
    writeFileSync(bin, `#!/bin/sh\ntouch '${marker}'\n`)
    chmodSync(bin, 0o755)
    const r = spawnSync('sh', loaded(['run', rdir, bin]), { encoding: 'utf8', env: { PATH: process.env.PATH } })
    expect(r.status).toBe(24)
    expect(r.stderr).toContain('does not match its sha256')
    expect(existsSync(marker)).toBe(false)
  })

  test('behavior: a host download keeps curl to http(s), 5 redirects and the size cap', () => {
    const root = join(dir, 'root-dl')
    const r = agent(['artifact', root, 'b'.repeat(64), 'download', 'https://example.com/x', '1048576'])
    expect(r.status).not.toBe(0)
    const argv = calls('curl').at(-1)!
    const opt = (name: string) => argv[argv.indexOf(name) + 1]
    expect({ proto: opt('--proto'), redir: opt('--proto-redir'), redirs: opt('--max-redirs'), size: opt('--max-filesize') }).toEqual({ proto: '=http,https', redir: '=http,https', redirs: '5', size: '1048576' })
    expect(argv.at(-1)).toBe('https://example.com/x')
    expect(agent(['artifact', root, 'b'.repeat(64), 'download', 'https://example.com/x', '1e9']).status).toBe(1)
  })

  test('error: unknown commands and malformed digests are refused', () => {
    expect(agent(['$(id)']).status).toBe(1)
    expect(agent(['artifact', join(dir, 'r2'), '../../etc', 'check', '-']).status).toBe(1)
  })

  test('behavior: facts report a rootless podman on cgroup v1 as a runtime without limits (fake podman info)', () => {
    const pod = join(dir, 'podfake')
    mkdirSync(pod, { recursive: true })
    writeFileSync(join(pod, 'podman'), '#!/bin/sh\n[ "$1" = info ] && [ "$2" = --format ] && echo "$FAKE_PODMAN_INFO"\nexit 0\n')
    chmodSync(join(pod, 'podman'), 0o755)
    const facts = (info: string) => {
      const r = spawnSync('sh', loaded(['facts']), { encoding: 'utf8', env: { PATH: `${pod}:${fakes}:/usr/bin:/bin:/usr/sbin:/sbin`, FAKE_LOG: dir, FAKE_PODMAN_INFO: info } })
      expect(r.status).toBe(0)
      return r.stdout
    }
    expect(facts('true v1')).toMatch(/^runtime=podman\nruntime_limits=no$/m)
    expect(facts('true v2')).toMatch(/^runtime=podman\nruntime_limits=yes$/m)
    expect(facts('false v1')).toMatch(/^runtime=podman\nruntime_limits=yes$/m)
  })
})
