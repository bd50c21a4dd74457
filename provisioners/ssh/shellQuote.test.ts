import { execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { describe, expect, test } from 'vitest'
import { quoteWord, shellQuote } from './shellQuote.js'

const shells = ['/bin/sh', '/bin/bash', '/bin/busybox'].filter((s) => existsSync(s))

/** Run the quoted command in a real shell; each argument comes back NUL-terminated. */
function roundTrip(shell: string, words: string[]): string[] {
  const argv = shell === '/bin/busybox' ? ['sh', '-c'] : ['-c']
  // a leading sentinel: printf with no argument would still print one empty word
  const out = execFileSync(shell, [...argv, shellQuote(['printf', '%s\\0', 'sentinel', ...words])], { encoding: 'utf8' })
  return out.split('\0').slice(1, -1)
}

const hostile = [
  '$(touch PWNED)',
  '`touch PWNED`',
  '; touch PWNED',
  '&& touch PWNED',
  '| touch PWNED',
  "'; touch PWNED; '",
  '"; touch PWNED; "',
  'a\ntouch PWNED',
  '\\',
  "it's",
  '$HOME ${HOME} $0 $@ $*',
  '*',
  '~',
  '-n',
  '',
  ' ',
  'ünïcödé 🚀 \u202e',
  '>PWNED',
  '<(touch PWNED)',
  '\r\t\v',
]

describe('shellQuote', () => {
  test('default: wraps each word in single quotes', () => {
    expect(shellQuote(['echo', 'a b'])).toBe(`'echo' 'a b'`)
    expect(quoteWord("it's")).toBe(`'it'\\''s'`)
  })

  test('error: refuses an empty argv and NUL bytes', () => {
    expect(() => shellQuote([])).toThrow(/empty/)
    expect(() => quoteWord('a\0b')).toThrow(/NUL/)
  })

  test.each(shells)('behavior: hostile words reach %s verbatim and nothing is executed', (shell) => {
    const dir = mkdtempSync(join(tmpdir(), 'bpo-quote-'))
    try {
      const out = execFileSync(shell, [...(shell === '/bin/busybox' ? ['sh', '-c'] : ['-c']), shellQuote(['printf', '%s\\0', ...hostile])], { encoding: 'utf8', cwd: dir })
      expect(out.split('\0').slice(0, -1)).toEqual(hostile)
      expect(readdirSync(dir)).toEqual([])
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  test('behavior: any string without NUL round-trips through /bin/sh (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ unit: 'binary', maxLength: 40 }).filter((s) => !s.includes('\0')), { maxLength: 6 }), (words) => {
        // the shell sees UTF-8: lone surrogates cannot survive any encoding, compare what can
        const enc = words.map((w) => Buffer.from(w, 'utf8').toString('utf8'))
        expect(roundTrip('/bin/sh', enc)).toEqual(enc)
      }),
      { numRuns: 150 },
    )
  })
})
