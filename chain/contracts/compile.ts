/**
 * Compile the Solidity contracts in-process with npm `solc` (standard JSON, optimizer on) and cache the artifacts on
 * disk, keyed by sha256 of the sources, the settings and the compiler version, so tests and dev compile once.
 */
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Abi, Hex } from 'viem'
import { BaseError } from '../../core/errors.js'

export const contractNames = ['TestStablecoin', 'BlueprintRegistry', 'ServiceEscrow'] as const
export type ContractName = (typeof contractNames)[number]
export type Artifact = { abi: Abi; bytecode: Hex }
export type Artifacts = Record<ContractName, Artifact>

export type CompileContractsParameters = {
  /** Where artifacts are cached. Default `<project>/.cache/contracts`. */
  cacheDir?: string
  /**
   * Tests only: change a contract's source before compiling (e.g. an escrow without its bounds, standing for an
   * older or foreign deployment). The patched sources are part of the cache key.
   */
  patch?: (name: ContractName, source: string) => string
}

export class CompileError extends BaseError {
  override name = 'CompileError'
  constructor(message: string, details: string[] = [], cause?: unknown) {
    super(message, { code: 'CONTRACT_COMPILE_FAILED', retryable: false, details, cause })
  }
}

/** Pinned so that cached bytecode never depends on the compiler's moving default. */
const settings = {
  optimizer: { enabled: true, runs: 200 },
  evmVersion: 'cancun',
  outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object'] } },
} as const

/** Directory holding the .sol files: beside this module, or the source tree's when running from a build. */
export function contractsDir(): string {
  const here = dirname(fileURLToPath(import.meta.url))
  let dir = here
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'ServiceEscrow.sol'))) return dir
    const candidate = join(dir, 'chain', 'contracts')
    if (existsSync(join(candidate, 'ServiceEscrow.sol'))) return candidate
    dir = dirname(dir)
  }
  throw new CompileError('Solidity sources not found', [`looked from ${here} upwards for chain/contracts/ServiceEscrow.sol`])
}

const require = createRequire(import.meta.url)
type Solc = { version(): string; compile(input: string): string }
let solcInstance: Solc | undefined
const loadSolc = (): Solc => (solcInstance ??= require('solc') as Solc)

/** The version of the npm `solc` package, read without loading the compiler. */
function solcPackageVersion(): string {
  return (require('solc/package.json') as { version: string }).version
}

const inflight = new Map<string, Promise<Artifacts>>()

/** Compile (or load from cache) TestStablecoin, BlueprintRegistry and ServiceEscrow. */
export async function compileContracts(o: CompileContractsParameters = {}): Promise<Artifacts> {
  const dir = contractsDir()
  const sources: Record<string, { content: string }> = {}
  for (const name of contractNames) {
    const content = await readFile(join(dir, `${name}.sol`), 'utf8')
    sources[`${name}.sol`] = { content: o.patch ? o.patch(name, content) : content }
  }
  const key = createHash('sha256')
    .update(JSON.stringify({ sources, settings, solc: solcPackageVersion() }))
    .digest('hex')
  const cacheDir = o.cacheDir ?? resolve(dir, '..', '..', '.cache', 'contracts')
  const file = join(cacheDir, `${key}.json`)
  const running = inflight.get(file)
  if (running) return running
  const p = (async () => {
    const cached = await readCache(file)
    if (cached) return cached
    const artifacts = compile(sources)
    try {
      await mkdir(cacheDir, { recursive: true })
      // write then rename: parallel test workers never read a half-written file
      const tmp = `${file}.${process.pid}.${Date.now()}.tmp`
      await writeFile(tmp, JSON.stringify(artifacts))
      await rename(tmp, file)
    } catch {
      // the cache only saves time; a read-only file system must not stop a deployment
    }
    return artifacts
  })()
  inflight.set(file, p)
  try {
    return await p
  } finally {
    inflight.delete(file)
  }
}

async function readCache(file: string): Promise<Artifacts | undefined> {
  try {
    const parsed = JSON.parse(await readFile(file, 'utf8')) as Partial<Artifacts>
    if (contractNames.every((n) => parsed[n]?.bytecode?.startsWith('0x') && Array.isArray(parsed[n]?.abi))) return parsed as Artifacts
  } catch {
    // a missing or unreadable cache entry is a cache miss
  }
  return undefined
}

type SolcOutput = {
  errors?: { severity: 'error' | 'warning' | 'info'; formattedMessage: string }[]
  contracts?: Record<string, Record<string, { abi: Abi; evm: { bytecode: { object: string } } }>>
}

function compile(sources: Record<string, { content: string }>): Artifacts {
  const solc = loadSolc()
  const output = JSON.parse(solc.compile(JSON.stringify({ language: 'Solidity', sources, settings }))) as SolcOutput
  const errors = (output.errors ?? []).filter((e) => e.severity === 'error')
  if (errors.length) throw new CompileError(`solc ${solc.version()} reported ${errors.length} error(s)`, errors.map((e) => e.formattedMessage))
  const out = {} as Artifacts
  for (const name of contractNames) {
    const c = output.contracts?.[`${name}.sol`]?.[name]
    if (!c?.evm.bytecode.object) throw new CompileError(`solc produced no bytecode for ${name}`)
    out[name] = { abi: c.abi, bytecode: `0x${c.evm.bytecode.object}` }
  }
  return out
}
