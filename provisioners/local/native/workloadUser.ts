/** Who replicas may run as besides the daemon: a named unprivileged user, checked once at construction. */
import { execFileSync } from 'node:child_process'
import { accessSync, constants as fsConstants } from 'node:fs'
import { join } from 'node:path'
import { configInvalid } from './errors.js'

const USER_NAME = /^[a-z_][a-z0-9_-]{0,31}$/

export type WorkloadUser = { name: string; uid: number; gid: number; setpriv: string }

/** setpriv's path; throws CONFIG_INVALID naming `what` when none is found. */
export function findSetpriv(what: string): string {
  const dirs = [...(process.env.PATH ?? '').split(':').filter((d) => d.startsWith('/')), '/usr/bin', '/bin', '/usr/sbin', '/sbin']
  const setpriv = dirs.map((d) => join(d, 'setpriv')).find((f) => {
    try {
      accessSync(f, fsConstants.X_OK)
      return true
    } catch {
      return false
    }
  })
  if (!setpriv) throw configInvalid(`${what} needs setpriv (util-linux), found in none of ${dirs.join(':')}`)
  return setpriv
}

/** The workload user's ids and setpriv, checked once at construction (the daemon must be root to switch users). */
export function resolveWorkloadUser(name: string): WorkloadUser {
  if (!USER_NAME.test(name)) throw configInvalid(`workloadUser: got ${JSON.stringify(name)}, expected a POSIX user name`)
  if (process.getuid?.() !== 0) throw configInvalid(`workloadUser ${name} needs the daemon to run as root (it runs as uid ${process.getuid?.()})`)
  const setpriv = findSetpriv(`workloadUser ${name}`)
  // id(1) asks NSS, so users from LDAP and the like are found too
  const idOf = (flag: '-u' | '-g') => {
    try {
      return Number(execFileSync('id', [flag, name], { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'ignore'] }).trim())
    } catch {
      return NaN
    }
  }
  const uid = idOf('-u')
  const gid = idOf('-g')
  if (!Number.isInteger(uid) || !Number.isInteger(gid)) throw configInvalid(`workloadUser: no user ${name} on this host`)
  if (uid === 0 || gid === 0) throw configInvalid(`workloadUser ${name} is privileged (uid ${uid}, gid ${gid}); expected an unprivileged user`)
  return { name, uid, gid, setpriv }
}
