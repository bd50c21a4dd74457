/** The operator's allow-list of non-public artifact hosts: syntax only (the policy lives in provisioners/artifacts). */
import { isIP } from 'node:net'

/** Problems with allow-list entries (empty when every entry is a host name, an address or a CIDR). */
export function allowListProblems(entries: readonly string[]): string[] {
  const out: string[] = []
  for (const e of entries) {
    const [addr, prefix, extra] = e.split('/')
    if (extra !== undefined || !addr) out.push(`${JSON.stringify(e)}: expected a host name, an address or a CIDR`)
    else if (prefix !== undefined) {
      const family = isIP(addr)
      const n = Number(prefix)
      if (!family || !/^\d{1,3}$/.test(prefix) || n > (family === 4 ? 32 : 128)) out.push(`${JSON.stringify(e)}: not a valid CIDR`)
    } else if (!isIP(addr) && !/^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$/.test(addr)) out.push(`${JSON.stringify(e)}: not a host name or address`)
  }
  return out
}

