/**
 * Parse a Python literal (the `repr` of dicts, lists, tuples, strings, numbers, True/False/None) into JS values.
 * SkyPilot's catalogs store GPU info this way, e.g. "{'Gpus': [{'Name': 'A100', 'Count': 8.0}]}".
 */

/** Parse `text` as a Python literal; throws a SyntaxError naming the offset on anything else. */
export function parsePyLiteral(text: string): unknown {
  let i = 0
  const n = text.length
  const fail = (what: string): never => {
    throw new SyntaxError(`python literal: ${what} at offset ${i} in ${JSON.stringify(text.slice(0, 80))}`)
  }
  const ws = () => {
    while (i < n && /\s/.test(text[i]!)) i++
  }
  const value = (): unknown => {
    ws()
    const c = text[i]
    if (c === '{') {
      i++
      const obj: Record<string, unknown> = {}
      ws()
      if (text[i] === '}') return i++, obj
      for (;;) {
        const k = value()
        ws()
        if (text[i] !== ':') fail("expected ':'")
        i++
        obj[String(k)] = value()
        ws()
        if (text[i] === ',') {
          i++
          ws()
          if (text[i] === '}') return i++, obj
          continue
        }
        if (text[i] === '}') return i++, obj
        fail("expected ',' or '}'")
      }
    }
    if (c === '[' || c === '(') {
      const close = c === '[' ? ']' : ')'
      i++
      const arr: unknown[] = []
      ws()
      if (text[i] === close) return i++, arr
      for (;;) {
        arr.push(value())
        ws()
        if (text[i] === ',') {
          i++
          ws()
          if (text[i] === close) return i++, arr
          continue
        }
        if (text[i] === close) return i++, arr
        fail(`expected ',' or '${close}'`)
      }
    }
    if (c === "'" || c === '"') {
      const q = c
      i++
      let s = ''
      while (i < n && text[i] !== q) {
        if (text[i] === '\\') {
          const e = text[i + 1]
          s += e === 'n' ? '\n' : e === 't' ? '\t' : (e ?? '')
          i += 2
        } else s += text[i++]
      }
      if (i >= n) fail('unterminated string')
      i++
      return s
    }
    const m = /^(-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|True|False|None)/.exec(text.slice(i, i + 64))
    if (!m) return fail('unexpected token')
    i += m[0].length
    if (m[0] === 'True') return true
    if (m[0] === 'False') return false
    if (m[0] === 'None') return null
    return Number(m[0])
  }
  const v = value()
  ws()
  if (i !== n) fail('trailing characters')
  return v
}
