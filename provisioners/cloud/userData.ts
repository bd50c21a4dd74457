/**
 * The cloud-init user data of a VM: its SSH host key (so the daemon knows it before the first connection) and the
 * operator's login key for root. Written as JSON, which is valid YAML, after the `#cloud-config` line.
 */
import type { HostKeyPair } from './hostKey.js'

export type CloudConfig = {
  disable_root: false
  ssh_pwauth: false
  ssh_deletekeys: true
  ssh_genkeytypes: string[]
  ssh_keys: { ed25519_private: string; ed25519_public: string }
  users: { name: 'root'; ssh_authorized_keys: string[] }[]
}

/** Build the `#cloud-config` user data for one VM. */
export function buildUserData(p: { hostKey: HostKeyPair; loginPublicKey: string }): string {
  const config: CloudConfig = {
    disable_root: false,
    ssh_pwauth: false,
    // no key of the image's own, no generated key: only the one the daemon pinned
    ssh_deletekeys: true,
    ssh_genkeytypes: [],
    ssh_keys: { ed25519_private: p.hostKey.privateKey, ed25519_public: p.hostKey.publicKey },
    users: [{ name: 'root', ssh_authorized_keys: [p.loginPublicKey] }],
  }
  return `#cloud-config\n${JSON.stringify(config, null, 1)}\n`
}

/** Parse user data written by buildUserData (the fakes use it); throws on anything else. */
export function parseUserData(text: string): CloudConfig {
  if (!text.startsWith('#cloud-config\n')) throw new TypeError('user data is not #cloud-config')
  return JSON.parse(text.slice('#cloud-config\n'.length)) as CloudConfig
}
