/**
 * Decode a blueprint as stored in BlueprintRegistry into the daemon's vocabulary, validating each source on its
 * own: a bad source is reported, not fatal, so a blueprint with one usable source can still be served.
 */
import type { Address, Hex } from 'viem'
import type { Requirements } from '../../core/spec.js'

/**
 * A blueprint source as published by its developer. Same shape as `BlueprintSource` in provisioners/types.ts
 * (chain/ may not import provisioners/; test/chain/types.test.ts checks that the two stay identical).
 */
export type BlueprintSource =
  | { kind: 'native'; url: string; sha256: string }
  | { kind: 'container'; image: string; digest: string }
  | { kind: 'testing'; url: string; sha256: string }

export type DecodedSource = { ok: true; source: BlueprintSource } | { ok: false; error: string }

export type Blueprint = {
  id: bigint
  developer: Address
  name: string
  sources: DecodedSource[]
  requirements: Requirements
  /** Token base units per hour, one per tier index (0 basic, 1 standard, 2 premium, ...). */
  pricePerHour: bigint[]
}

/** The struct returned by `BlueprintRegistry.getBlueprint`, plus its id. */
export type RawBlueprint = {
  id: bigint
  developer: Address
  name: string
  sources: readonly { kind: number; uri: string; digest: Hex }[]
  requirements: {
    vcpuMilli: number
    memoryMiB: number
    storageGiB: number
    gpuCount: number
    gpuModel: string
    ports: readonly number[]
  }
  pricePerHour: readonly bigint[]
}

const zeroDigest = `0x${'0'.repeat(64)}`

// OCI distribution reference grammar, repository name only (no tag, no digest)
const domainComponent = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])'
const domain = `(?:${domainComponent}(?:\\.${domainComponent})*|\\[[0-9a-fA-F:]+\\])(?::[0-9]+)?`
const pathComponent = '[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*'
const repositoryName = new RegExp(`^(?:${domain}/)?${pathComponent}(?:/${pathComponent})*$`)

/** True when `name` is an OCI repository name (e.g. "ghcr.io/acme/echo", "localhost:5000/x"), without tag or digest. */
export function isImageRepository(name: string): boolean {
  return name.length > 0 && name.length <= 255 && repositoryName.test(name)
}

/** Validate one on-chain source. */
export function decodeSource(raw: { kind: number; uri: string; digest: Hex }): DecodedSource {
  const digest = raw.digest.toLowerCase()
  if (!/^0x[0-9a-f]{64}$/.test(digest)) return { ok: false, error: `digest ${raw.digest} is not 32 bytes` }
  if (digest === zeroDigest) return { ok: false, error: 'digest is zero: the source is not pinned' }
  const hex = digest.slice(2)
  if (raw.kind === 0 || raw.kind === 2) {
    const kind = raw.kind === 0 ? 'native' : 'testing'
    let url: URL
    try {
      url = new URL(raw.uri)
    } catch {
      return { ok: false, error: `${kind} source: ${JSON.stringify(truncate(raw.uri))} is not a URL` }
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      return { ok: false, error: `${kind} source: URL scheme ${url.protocol} is not http: or https:` }
    // never echo the credentials themselves
    if (url.username || url.password) return { ok: false, error: `${kind} source: URL carries credentials` }
    return { ok: true, source: { kind, url: url.toString(), sha256: hex } }
  }
  if (raw.kind === 1) {
    if (!isImageRepository(raw.uri))
      return {
        ok: false,
        error: `container source: ${JSON.stringify(truncate(raw.uri))} is not an image repository name (no tag or digest, e.g. "ghcr.io/acme/echo")`,
      }
    return { ok: true, source: { kind: 'container', image: raw.uri, digest: `sha256:${hex}` } }
  }
  return { ok: false, error: `unknown source kind ${raw.kind} (known: 0 native, 1 container, 2 testing)` }
}

const truncate = (s: string) => (s.length > 200 ? `${s.slice(0, 200)}…` : s)

/** Decode a registry blueprint: requirements in daemon units (vCPU, GiB), each source validated. */
export function decodeBlueprint(raw: RawBlueprint): Blueprint {
  const r = raw.requirements
  return {
    id: raw.id,
    developer: raw.developer,
    name: raw.name,
    sources: raw.sources.map(decodeSource),
    requirements: {
      vcpu: r.vcpuMilli / 1000,
      memoryGiB: r.memoryMiB / 1024,
      storageGiB: r.storageGiB,
      gpu: { count: r.gpuCount, model: r.gpuModel.length ? r.gpuModel : undefined },
      ports: [...r.ports],
    },
    pricePerHour: [...raw.pricePerHour],
  }
}
