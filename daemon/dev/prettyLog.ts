/**
 * A human-readable pino destination for `npm run dev`: one line per record, "12:00:01 INFO  services  active k=v".
 */
import type { DestinationStream } from 'pino'

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO ', 40: 'WARN ', 50: 'ERROR', 60: 'FATAL' }
const COLORS: Record<number, string> = { 10: '90', 20: '90', 30: '32', 40: '33', 50: '31', 60: '31' }
const SKIP = new Set(['level', 'time', 'msg', 'module', 'pid', 'hostname'])

export function prettyDestination(out: NodeJS.WritableStream = process.stdout, color = Boolean((out as { isTTY?: boolean }).isTTY)): DestinationStream {
  return {
    write(line: string) {
      let r: Record<string, unknown>
      try {
        r = JSON.parse(line)
      } catch {
        out.write(line)
        return
      }
      const lvl = Number(r.level)
      const time = typeof r.time === 'string' ? r.time.slice(11, 19) : new Date().toISOString().slice(11, 19)
      const fields = Object.entries(r)
        .filter(([k]) => !SKIP.has(k))
        .map(([k, v]) => {
          if (k === 'err' && v && typeof v === 'object') return `err=${JSON.stringify((v as { message?: string }).message ?? v)}`
          return `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`
        })
        .join(' ')
      const level = LEVELS[lvl] ?? String(lvl)
      const tag = color ? `\x1b[${COLORS[lvl] ?? '0'}m${level}\x1b[0m` : level
      const mod = String(r.module ?? '').padEnd(9)
      out.write(`${time} ${tag} ${mod} ${String(r.msg ?? '')}${fields ? `  ${color ? '\x1b[90m' : ''}${fields}${color ? '\x1b[0m' : ''}` : ''}\n`)
    },
  }
}
