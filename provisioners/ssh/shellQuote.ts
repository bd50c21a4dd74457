/**
 * The one way a remote command is built: every argument is wrapped in POSIX single quotes, so the remote shell
 * sees exactly these words and expands nothing ($, `, ;, newlines, quotes are all literal).
 */

/** Quote one word for a POSIX shell: `'` + text with each `'` written as `'\''` + `'`. Rejects NUL. */
export function quoteWord(word: string): string {
  if (typeof word !== 'string') throw new TypeError(`shell word must be a string, got ${typeof word}`)
  if (word.includes('\0')) throw new TypeError('shell word contains a NUL byte')
  return `'${word.replace(/'/g, `'\\''`)}'`
}

/** Quote an argument vector into one command line for `sh -c` (what an SSH exec request runs). */
export function shellQuote(argv: readonly string[]): string {
  if (!argv.length) throw new TypeError('empty argument vector')
  return argv.map(quoteWord).join(' ')
}
