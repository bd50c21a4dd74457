/** A SkyPilot AWS vms.csv of any size, built by repeating the recorded rows (shared by the pricing and placement benches). */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { pricingFixturesDir } from '../test/fakes/price-sources.js'

const read = (f: string) => readFileSync(join(pricingFixturesDir, f), 'utf8')
const header = read('aws-vms-v8.part0.csv').split('\n')[0]!
const recorded = [read('aws-vms-v8.part0.csv'), read('aws-vms-v8.part2.csv')].flatMap((t) => t.trim().split('\n').slice(1))

/** A SkyPilot AWS CSV of about `targetBytes`, repeating the recorded rows. */
export function buildCsv(targetBytes: number): { text: string; rows: number } {
  const lines = [header]
  let size = header.length + 1
  for (let rep = 0; size < targetBytes; rep++) {
    const factor = 1 + rep / 997
    for (const row of recorded) {
      const c = row.split(',')
      if (rep > 0) {
        c[0] = `${c[0]}-r${rep}`
        c[6] = (Number(c[6]) * factor).toFixed(6)
        if (c[7]) c[7] = (Number(c[7]) * factor).toFixed(6)
      }
      const line = c.join(',')
      lines.push(line)
      size += line.length + 1
      if (size >= targetBytes) break
    }
  }
  return { text: `${lines.join('\n')}\n`, rows: lines.length - 1 }
}

