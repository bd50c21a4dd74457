/**
 * Per-VM SSH host keys without trust on first use: the key pair is derived from the operator's login key, the
 * deployment, the replica and its generation, so the daemon knows the public host key before the VM exists, can put
 * the private half in the VM's user data, and finds the same key again after a crash or a lost state directory
 * (nothing secret is ever stored).
 */
import { createHmac, createPrivateKey, createPublicKey } from 'node:crypto'
import type { Secret } from '../../config/secrets.js'

export type HostKeyPair = {
  /** OpenSSH private key ("-----BEGIN OPENSSH PRIVATE KEY-----"). A secret: goes into user data only. */
  privateKey: string
  /** "ssh-ed25519 AAAA..." (what the SSH machinery pins). */
  publicKey: string
}

export type DeriveHostKeyParameters = {
  /** The operator's SSH login private key (the derivation secret). */
  loginKey: Secret
  operatorId: string
  deploymentId: string
  replica: number
  /** Bumped each time the replica's VM is replaced, so a new VM gets a new key. */
  generation: number
}

const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex')

const u32 = (n: number) => {
  const b = Buffer.alloc(4)
  b.writeUInt32BE(n >>> 0)
  return b
}
const str = (b: Buffer | string) => {
  const x = typeof b === 'string' ? Buffer.from(b) : b
  return Buffer.concat([u32(x.length), x])
}

/** Derive the ed25519 host key pair of one VM (deterministic, HMAC-SHA256 of the login key). */
export function deriveHostKey(p: DeriveHostKeyParameters): HostKeyPair {
  const seed = createHmac('sha256', p.loginKey.reveal())
    .update(['bpo-vm-host-key-v1', p.operatorId, p.deploymentId, String(p.replica), String(p.generation)].join('\0'))
    .digest()
  return hostKeyFromSeed(seed)
}

/** An ed25519 key pair in OpenSSH formats from a 32-byte seed. */
export function hostKeyFromSeed(seed: Buffer): HostKeyPair {
  if (seed.length !== 32) throw new TypeError('an ed25519 seed is 32 bytes')
  const priv = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: 'der', type: 'pkcs8' })
  const jwk = createPublicKey(priv).export({ format: 'jwk' }) as { x: string }
  const pub = Buffer.from(jwk.x, 'base64url')
  const blob = Buffer.concat([str('ssh-ed25519'), str(pub)])
  const check = seed.subarray(0, 4)
  let section = Buffer.concat([check, check, str('ssh-ed25519'), str(pub), str(Buffer.concat([seed, pub])), str('bpo-vm')])
  const pad: number[] = []
  for (let i = 1; (section.length + pad.length) % 8 !== 0; i++) pad.push(i)
  section = Buffer.concat([section, Buffer.from(pad)])
  const body = Buffer.concat([Buffer.from('openssh-key-v1\0'), str('none'), str('none'), str(''), u32(1), str(blob), str(section)])
  const b64 = body.toString('base64').replace(/(.{70})/g, '$1\n').replace(/\n$/, '')
  return {
    privateKey: `-----BEGIN OPENSSH PRIVATE KEY-----\n${b64}\n-----END OPENSSH PRIVATE KEY-----\n`,
    publicKey: `ssh-ed25519 ${blob.toString('base64')}`,
  }
}
