/**
 * Workload isolation on an SSH host (a real sshd on 127.0.0.1, logging in as root): with `workloadUids` every native
 * deployment runs as a uid of its own, recorded in the ledger and the host manifest and reused after a restart and by
 * a daemon that lost its ledger; a replica reads neither the daemon's environment, nor another deployment's data, env
 * file, log or manifest.
 */
import { chmodSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import type { SshHost } from '../../provisioners/ssh/types.js'
import { demoServicePath, readDemoInfo } from '../helpers/demo-service.js'
import { destroyAll, startSshLab, type SshLab } from './harness.js'

let lab: SshLab
const lo = 2_300_000 + Math.floor(Math.random() * 1000) * 100
let host: SshHost
let root: string

const reader = `#!/bin/sh
r="$DATA_DIR/attempts"
: > "$r.tmp"
try() { if out=$( (eval "$2") 2>&1 >/dev/null ); then echo "$1=read"; else echo "$1=refused $out"; fi >> "$r.tmp"; }
dep="$DATA_DIR/../.."
other="$dep/../$OTHER"
try environ 'cat /proc/$DAEMON_PID/environ'
try other-data 'ls "$other/data/0"'
try other-file 'cat "$other/data/0/mine"'
try other-env 'cat "$other/replicas/0/env.sh"'
try other-log 'cat "$other/replicas/0/log"'
try other-manifest 'cat "$other/manifest.json"'
try other-replicas 'ls "$other/replicas/0"'
try own-manifest 'cat "$dep/manifest.json"'
try own-data 'echo secret-of-$DEPLOYMENT_ID > "$DATA_DIR/mine"'
mv "$r.tmp" "$r"
exec node '${demoServicePath}'
`

beforeAll(async () => {
  lab = await startSshLab({ hosts: 1 })
  // the workloads must reach their data dirs: the lab's temp dir is 0700
  chmodSync(lab.dir, 0o711)
  root = join(lab.dir, 'root-iso')
  host = { ...lab.hosts[0]!, name: 'h-iso', remoteRoot: root, workloadUids: { from: lo, to: lo + 49 } }
  lab.artifacts.put('reader', reader)
  process.env.ISOLATION_CANARY = 'canary-in-the-daemon-environment'
})
afterAll(async () => {
  await lab?.stop()
})

const depDir = (id: string) => join(root, 'ops', 'op-test', id)
const attempts = (id: string): Record<string, string> =>
  Object.fromEntries(
    readFileSync(join(depDir(id), 'data', '0', 'attempts'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  )

describe('ssh: a uid per deployment', () => {
  test('behavior: two deployments run as two uids; neither reads the daemon\'s environment nor the other\'s data, env file, log or manifest; a restart and a daemon without its ledger keep the uid', { timeout: 180_000 }, async (ctx) => {
    if (process.getuid?.() !== 0 || lab.hosts[0]!.user !== 'root') return ctx.skip('needs a root login')
    const stateDir = join(lab.dir, 'state-iso')
    const prov = lab.provisioner({ hosts: [host], supervisor: 'setsid', stateDir })
    const req = (id: string, other: string) => ({
      ...lab.request(id, { env: { DAEMON_PID: String(process.pid), OTHER: other } }),
      source: { kind: 'native' as const, url: lab.artifacts.urlOf('reader'), sha256: lab.artifacts.sha256('reader') },
    })
    try {
      const a = await prov.provision(req('iso-a', 'iso-b'))
      const b = await prov.provision(req('iso-b', 'iso-a'))
      const uids = Object.fromEntries(prov.placements().map((pl) => [pl.deploymentId, pl.uid]))
      expect(uids['iso-a']).toBeGreaterThanOrEqual(lo)
      expect(uids['iso-a']).toBeLessThanOrEqual(lo + 49)
      expect(uids['iso-b']).toBeGreaterThanOrEqual(lo)
      expect(uids['iso-b']).not.toBe(uids['iso-a'])
      for (const [id, st] of [['iso-a', a], ['iso-b', b]] as const) {
        const uid = uids[id]!
        const { pid } = await readDemoInfo(st.endpoints[0]!)
        const status = readFileSync(`/proc/${pid}/status`, 'utf8')
        expect(status).toMatch(new RegExp(`^Uid:\\s+${uid}\\s+${uid}\\s+${uid}\\s+${uid}$`, 'm'))
        expect(status).toMatch(new RegExp(`^Gid:\\s+${uid}\\s+${uid}\\s+${uid}\\s+${uid}$`, 'm'))
        expect(status).toMatch(/^Groups:\s*$/m)
        const data = statSync(join(depDir(id), 'data', '0'))
        expect({ uid: data.uid, gid: data.gid, mode: data.mode & 0o777 }).toEqual({ uid, gid: uid, mode: 0o700 })
        // the host manifest carries the uid (a daemon without its ledger reads it back)
        expect(JSON.parse(readFileSync(join(depDir(id), 'manifest.json'), 'utf8')).uid).toBe(uid)
      }
      const seen = attempts('iso-b')
      expect(seen['own-data']).toBe('read')
      for (const k of ['environ', 'other-data', 'other-file', 'other-env', 'other-log', 'other-manifest', 'other-replicas', 'own-manifest']) {
        expect(seen[k], k).toMatch(/^refused .*(Permission denied|Operation not permitted)/)
      }
      expect(readFileSync(join(depDir('iso-a'), 'data', '0', 'mine'), 'utf8')).toBe('secret-of-iso-a\n')

      // a restarted daemon (same ledger) scales to zero and back: same uid
      await prov.close()
      const again = lab.provisioner({ hosts: [host], supervisor: 'setsid', stateDir })
      await again.scale('iso-a', 0)
      const back = await again.scale('iso-a', 1)
      const info = await readDemoInfo(back.endpoints[0]!)
      expect(readFileSync(`/proc/${info.pid}/status`, 'utf8')).toMatch(new RegExp(`^Uid:\\s+${uids['iso-a']}\\s`, 'm'))
      // a daemon that lost its ledger adopts the deployment with its uid from the host manifest
      const fresh = lab.provisioner({ hosts: [host], supervisor: 'setsid' })
      await fresh.scale('iso-b', 0)
      const adopted = await fresh.scale('iso-b', 1)
      expect(fresh.placements().find((pl) => pl.deploymentId === 'iso-b')?.uid).toBe(uids['iso-b'])
      const infoB = await readDemoInfo(adopted.endpoints[0]!)
      expect(readFileSync(`/proc/${infoB.pid}/status`, 'utf8')).toMatch(new RegExp(`^Uid:\\s+${uids['iso-b']}\\s`, 'm'))
      await destroyAll(again)
      await destroyAll(fresh)
    } finally {
      await destroyAll(prov)
    }
  })

  test('error: a bad range, or a range with a workload user, is refused at construction', () => {
    expect(() => lab.provisioner({ hosts: [{ ...host, workloadUids: { from: 10, to: 20 } }] })).toThrow(/workloadUids: min 10 is below 1000/)
    expect(() => lab.provisioner({ hosts: [{ ...host, workloadUser: 'nobody' }] })).toThrow(/exclude each other/)
  })
})
