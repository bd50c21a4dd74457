/**
 * Which addresses an artifact download may connect to. Artifact URLs come from the chain (anyone can publish one), so
 * by default only public addresses are reachable: loopback, private (RFC 1918, fc00::/7), link-local (169.254/16 with
 * the cloud metadata services, fe80::/10), unspecified, CGNAT (100.64/10), multicast and reserved ranges are refused,
 * checked on the address a name resolves to (for every connection, so also after each redirect). The operator's
 * allow-list (host names, addresses or CIDRs) opens exceptions, e.g. `127.0.0.1` for a local artifact server.
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns'
import { BlockList, isIP, type LookupFunction } from 'node:net'
import { ProvisionError } from '../errors.js'

const NON_PUBLIC_V4: [string, number][] = [
  ['0.0.0.0', 8], // "this network", unspecified
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // CGNAT
  ['127.0.0.0', 8],
  ['169.254.0.0', 16], // link-local, cloud metadata (169.254.169.254)
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, broadcast
]
const NON_PUBLIC_V6: [string, number][] = [
  ['::', 128],
  ['::1', 128],
  ['64:ff9b::', 96], // NAT64: would reach any IPv4 address, private ones included
  ['100::', 64],
  ['2001:db8::', 32],
  ['fc00::', 7],
  ['fe80::', 10],
  ['fec0::', 10],
  ['ff00::', 8],
]

const nonPublic = new BlockList()
for (const [a, p] of NON_PUBLIC_V4) nonPublic.addSubnet(a, p, 'ipv4')
for (const [a, p] of NON_PUBLIC_V6) nonPublic.addSubnet(a, p, 'ipv6')

/** True when `ip` is in one of the refused ranges (IPv4-mapped IPv6 counts as its IPv4 address). */
export function isNonPublicAddress(ip: string): boolean {
  const family = isIP(ip)
  if (!family) return true
  return nonPublic.check(ip, family === 4 ? 'ipv4' : 'ipv6')
}

export type AddressPolicy = {
  /** Throws ARTIFACT_HOST_REFUSED unless `url`'s host may be fetched as far as can be told without resolving it. */
  checkUrl(url: URL): void
  /** A `lookup` for net/tls connect that refuses names resolving to a refused address (not for allow-listed names). */
  lookup: LookupFunction
  /** True when the operator allow-listed this host name or address. */
  allows(hostOrIp: string): boolean
}

import { allowListProblems } from '../../core/allowList.js'

export { allowListProblems }

export const hostRefused = (host: string, why: string) =>
  new ProvisionError(`artifact host ${host} refused: ${why}`, {
    code: 'ARTIFACT_HOST_REFUSED',
    reason: 'ARTIFACT_UNREACHABLE',
    retryable: false,
    details: [`host: ${host}`, why, 'an operator can allow it with [providers] artifact_allow_hosts'],
    meta: { host },
  })

const bare = (host: string) => host.replace(/^\[(.*)\]$/, '$1').toLowerCase()

/** The policy for this allow-list. Throws TypeError on malformed entries. */
export function createAddressPolicy(allow: readonly string[] = []): AddressPolicy {
  const problems = allowListProblems(allow)
  if (problems.length) throw new TypeError(`artifact allow-list: ${problems.join('; ')}`)
  const names = new Set<string>()
  const allowed = new BlockList()
  for (const e of allow) {
    const [addr, prefix] = e.split('/') as [string, string | undefined]
    const family = isIP(addr)
    if (!family) names.add(addr.toLowerCase().replace(/\.$/, ''))
    else if (prefix !== undefined) allowed.addSubnet(addr, Number(prefix), family === 4 ? 'ipv4' : 'ipv6')
    else allowed.addAddress(addr, family === 4 ? 'ipv4' : 'ipv6')
  }
  const addressOk = (ip: string) => {
    const family = isIP(ip)
    return !!family && (allowed.check(ip, family === 4 ? 'ipv4' : 'ipv6') || !isNonPublicAddress(ip))
  }
  const allows = (hostOrIp: string) => {
    const h = bare(hostOrIp).replace(/\.$/, '')
    if (names.has(h)) return true
    const family = isIP(h)
    return !!family && allowed.check(h, family === 4 ? 'ipv4' : 'ipv6')
  }

  const lookup: LookupFunction = (hostname, options, callback) => {
    const cb = callback as (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void
    dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return cb(err, [])
      const list = addresses as LookupAddress[]
      if (!allows(hostname)) {
        // every address must pass: one private record among public ones is enough for a rebinding attack
        const bad = list.find((a) => !addressOk(a.address))
        if (bad) return cb(hostRefused(hostname, `it resolves to ${bad.address}, a loopback, private, link-local or reserved address`) as unknown as NodeJS.ErrnoException, [])
      }
      if ((options as { all?: boolean }).all) return cb(null, list)
      const first = list[0]
      if (!first) {
        const none: NodeJS.ErrnoException = new Error(`${hostname} has no address`)
        none.code = 'ENOTFOUND'
        return cb(none, [])
      }
      cb(null, first.address, first.family)
    })
  }

  return {
    allows,
    lookup,
    checkUrl(url) {
      const host = bare(url.hostname)
      if (allows(host)) return
      // a literal address is connected to without any lookup: check it here
      if (isIP(host) && !addressOk(host)) throw hostRefused(host, 'a loopback, private, link-local or reserved address')
    },
  }
}
