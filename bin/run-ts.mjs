#!/usr/bin/env node
// Run a TypeScript file of this project through tsx: `node bin/run-ts.mjs bench/index.ts`.
import { pathToFileURL } from 'node:url'
import { resolve } from 'node:path'

const { register } = await import('tsx/esm/api')
register()
const file = process.argv[2]
if (!file) {
  console.error('usage: run-ts.mjs FILE.ts [args...]')
  process.exit(2)
}
process.argv.splice(1, 1)
await import(pathToFileURL(resolve(file)).href)
