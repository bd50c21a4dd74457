/**
 * A small RFC 4180 CSV reader: quoted cells (with "" escapes, commas and newlines inside), LF or CRLF line ends.
 * Written for speed on multi-megabyte catalogs: one pass over char codes, unquoted cells sliced directly.
 */

export type CsvRow = {
  /** 1-based line number where the row starts. */
  line: number
  cells: string[]
  /** The row's text, without its line end. */
  raw: string
}

const QUOTE = 34
const COMMA = 44
const LF = 10
const CR = 13

/** Parse CSV text into rows (the header is the first row). Blank lines are skipped. */
export function parseCsv(text: string): CsvRow[] {
  const rows: CsvRow[] = []
  const n = text.length
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0
  let line = 1
  while (i < n) {
    const startLine = line
    const start = i
    let end = n
    const cells: string[] = []
    for (;;) {
      if (text.charCodeAt(i) === QUOTE) {
        let cell = ''
        let from = ++i
        for (;;) {
          if (i >= n) {
            cell += text.slice(from, i)
            break
          }
          const c = text.charCodeAt(i)
          if (c === QUOTE) {
            if (text.charCodeAt(i + 1) === QUOTE) {
              cell += text.slice(from, i + 1)
              i += 2
              from = i
              continue
            }
            cell += text.slice(from, i)
            i++
            break
          }
          if (c === LF) line++
          i++
        }
        // anything after the closing quote up to the delimiter is kept, as lenient readers do
        const from2 = i
        while (i < n) {
          const c = text.charCodeAt(i)
          if (c === COMMA || c === LF || c === CR) break
          i++
        }
        cells.push(from2 < i ? cell + text.slice(from2, i) : cell)
      } else {
        const from = i
        while (i < n) {
          const c = text.charCodeAt(i)
          if (c === COMMA || c === LF || c === CR) break
          i++
        }
        cells.push(text.slice(from, i))
      }
      if (i >= n) break
      const c = text.charCodeAt(i)
      if (c === COMMA) {
        i++
        continue
      }
      end = i
      if (c === CR) i++
      if (text.charCodeAt(i) === LF) i++
      line++
      break
    }
    if (!(cells.length === 1 && cells[0] === '')) rows.push({ line: startLine, cells, raw: text.slice(start, end) })
  }
  return rows
}

/** Map of column name → index; throws with the missing names when required columns are absent. */
export function columnIndex(header: readonly string[], required: readonly string[]): Record<string, number> {
  const idx: Record<string, number> = {}
  header.forEach((h, i) => {
    idx[h.trim()] = i
  })
  const missing = required.filter((r) => idx[r] === undefined)
  if (missing.length) throw new TypeError(`missing column(s) ${missing.join(', ')} in header ${JSON.stringify(header.join(','))}`)
  return idx
}
