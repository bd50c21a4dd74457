/**
 * All benchmarks, or the ones named: `npm run bench [-- pricing|latency ...]`. Each prints its figures.
 */
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const all = ['pricing', 'placement', 'latency', 'store', 'rpc', 'scale', 'balancer']
const chosen = process.argv.slice(2).filter((a) => all.includes(a))
const runner = fileURLToPath(new URL('../bin/run-ts.mjs', import.meta.url))
let failed = 0
for (const name of chosen.length ? chosen : all) {
  console.log(`\n== bench/${name}.ts`)
  const r = spawnSync(process.execPath, [runner, fileURLToPath(new URL(`./${name}.ts`, import.meta.url))], { stdio: 'inherit' })
  if (r.status !== 0) failed++
}
process.exitCode = failed ? 1 : 0
