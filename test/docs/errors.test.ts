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

  test('behavior: each code is documented once', () => {
    const dupes = documented.filter((c, i) => documented.indexOf(c) !== i)
    expect(dupes).toEqual([])
  })
})
