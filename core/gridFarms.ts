/**
 * ThreeFold grid proxy farms (`/farms`) and the free public IPv4 addresses each holds: read by the price catalog
 * (which farms can give a replica its address) and by the grid target (node choice), so the rule lives here.
 */

export type GridPublicIp = {
  id?: string
  ip?: string
  /** Contract holding the address; 0 = free. Older proxies spell it `contractId`. */
  contract_id?: number
  contractId?: number
  gateway?: string
}

export type GridFarm = {
  name?: string
  farmId?: number
  pricingPolicyId?: number
  dedicated?: boolean
  publicIps?: GridPublicIp[]
}

export type FarmIpv4 = {
  /** Free public IPv4 addresses per farm id, for every farm read. */
  freeIpv4: Map<number, number>
  rejected: { row: string; why: string }[]
}

/** Free public IPv4 addresses per farm: an address is free when no contract holds it (contract id 0). */
export function parseGridFarmList(farms: readonly GridFarm[]): FarmIpv4 {
  const freeIpv4 = new Map<number, number>()
  const rejected: FarmIpv4['rejected'] = []
  farms.forEach((f, i) => {
    const row = `farms[${i}] ${f?.name ?? '?'}`
    if (typeof f?.farmId !== 'number') return void rejected.push({ row, why: 'no farmId' })
    if (!Array.isArray(f.publicIps)) return void rejected.push({ row, why: 'no publicIps list' })
    // an address whose contract is unknown is not counted as free
    const free = f.publicIps.filter((ip) => (ip?.contract_id ?? ip?.contractId) === 0).length
    freeIpv4.set(f.farmId, (freeIpv4.get(f.farmId) ?? 0) + free)
  })
  return { freeIpv4, rejected }
}
