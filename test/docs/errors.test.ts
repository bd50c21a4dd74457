/**
 * Every error code thrown by shipped code, and every reason code, is documented once in docs/errors.md.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, test } from 'vitest'
import { ReasonCodes } from '../../core/errors.js'

const root = new URL('../../', import.meta.url).pathname
const shipped = ['core', 'config', 'chain', 'pricing', 'provisioners', 'daemon']

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f)
    if (statSync(p).isDirectory()) return files(p)
    return p.endsWith('.ts') && !p.endsWith('.test.ts') ? [p] : []
  })
}

function codesInCode(): Map<string, string> {
  const found = new Map<string, string>()
  const patterns = [/[{,\s]code: '([A-Z][A-Z0-9_]+)'/g, /[{,\s]code \?\? '([A-Z][A-Z0-9_]+)'/g, /[{,\s]reason: '([A-Z][A-Z0-9_]+)'/g]
  for (const dir of shipped) {
    for (const f of files(join(root, dir))) {
      const text = readFileSync(f, 'utf8')
      for (const re of patterns) for (const m of text.matchAll(re)) if (!found.has(m[1]!)) found.set(m[1]!, f.slice(root.length))
    }
  }
  return found
}

/** Codes no test provokes yet (see the rule below). Shrink it; never add to it. */
const NOT_YET_PROVOKED: string[] = []

function testFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    if (f === 'node_modules' || f.startsWith('.')) return []
    const p = join(dir, f)
    if (statSync(p).isDirectory()) return testFiles(p)
    return p.endsWith('.test.ts') ? [p] : []
  })
}

const ASSERTION = /\bexpect\w*\s*\(|\.(toThrow\w*|rejects|resolves|toMatchObject|toBe|toEqual|toStrictEqual|toContain\w*|toMatch)\b/

/** Documented codes that appear within two lines of an assertion in some test file. */
function provokedCodes(codes: string[]): Set<string> {
  const found = new Set<string>()
  for (const f of testFiles(root)) {
    if (f.endsWith('test/docs/errors.test.ts')) continue
    const lines = readFileSync(f, 'utf8').split('\n')
    for (let i = 0; i < lines.length; i++) {
      const hits = codes.filter((c) => !found.has(c) && new RegExp(`\\b${c}\\b`).test(lines[i]!))
      if (!hits.length) continue
      if (ASSERTION.test(lines.slice(Math.max(0, i - 2), i + 3).join('\n'))) for (const c of hits) found.add(c)
    }
  }
  return found
}

describe('docs/errors.md', () => {
  const doc = readFileSync(join(root, 'docs/errors.md'), 'utf8')
  const documented = [...doc.matchAll(/^\| `([A-Z][A-Z0-9_]+)` \|/gm)].map((m) => m[1]!)

  test('default: every reason code is documented', () => {
    for (const c of ReasonCodes) expect(documented, `reason code ${c}`).toContain(c)
  })

  test('behavior: every error code in shipped code is documented', () => {
    const missing = [...codesInCode()].filter(([c]) => !documented.includes(c)).map(([c, f]) => `${c} (${f})`)
    expect(missing).toEqual([])
  })

  /**
   * "Provoked by a test" is checked like this: the code's name appears in some test file (*.test.ts anywhere in the
   * repo) within two lines of an assertion — an `expect…(` call (expect, expectRefund, ...) or a matcher such as
   * toThrow, rejects, toMatchObject, toBe, toEqual, toContain, toMatch. Writing a code down in a comment or a fixture
   * does not count; asserting that an operation ended with it does. NOT_YET_PROVOKED lists the codes no test provokes
   * yet: it may only shrink (a listed code that a test now provokes fails too, so the list stays true).
   */
  test('behavior: every documented code is provoked by some test', () => {
    const provoked = provokedCodes(documented)
    const unprovoked = documented.filter((c) => !provoked.has(c))
    expect(unprovoked.filter((c) => !NOT_YET_PROVOKED.includes(c)), 'documented codes that no test provokes').toEqual([])
    expect(NOT_YET_PROVOKED.filter((c) => provoked.has(c)), 'provoked now: remove from NOT_YET_PROVOKED').toEqual([])
    expect(NOT_YET_PROVOKED.filter((c) => !documented.includes(c)), 'not documented: remove from NOT_YET_PROVOKED').toEqual([])
  })

  test('behavior: each code is documented once', () => {
    const dupes = documented.filter((c, i) => documented.indexOf(c) !== i)
    expect(dupes).toEqual([])
  })
})
