import type { Abi } from 'viem'
import { describe, expect, test } from 'vitest'
import { blueprintRegistryAbi, serviceEscrowAbi, testStablecoinAbi } from './abi.js'
import { compileContracts } from './compile.js'

/** Drop what viem's typing does not carry (internalType, anonymous/indexed: false, empty names) and sort by kind and name. */
const strip = (x: unknown): unknown => {
  if (Array.isArray(x)) return x.map(strip)
  if (x && typeof x === 'object')
    return Object.fromEntries(
      Object.entries(x)
        .filter(([k, v]) => k !== 'internalType' && !(k === 'anonymous' && v === false) && !(k === 'name' && v === '') && !(k === 'indexed' && v === false))
        .map(([k, v]) => [k, strip(v)]),
    )
  return x
}
const normalized = (abi: Abi) =>
  abi
    .map(strip)
    .sort((a, b) => sortKey(a).localeCompare(sortKey(b)))
const sortKey = (x: unknown) => {
  const i = x as { type: string; name?: string }
  return `${i.type}:${i.name ?? ''}:${JSON.stringify(x)}`
}

describe('abi', () => {
  test('default: the human-readable ABIs equal what solc compiled', async () => {
    const artifacts = await compileContracts()
    expect(normalized(testStablecoinAbi)).toEqual(normalized(artifacts.TestStablecoin.abi))
    expect(normalized(blueprintRegistryAbi)).toEqual(normalized(artifacts.BlueprintRegistry.abi))
    expect(normalized(serviceEscrowAbi)).toEqual(normalized(artifacts.ServiceEscrow.abi))
  })
})
