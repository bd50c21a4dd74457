#!/usr/bin/env node
// Entry point: the compiled build when present (npm run build), otherwise the TypeScript sources through tsx.
import { existsSync } from 'node:fs'
import { fileURLToPath, pathToFileURL } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const built = `${root}dist/daemon/cli.js`
let mod
if (existsSync(built) && !process.env.BPO_FROM_SOURCE) {
  mod = await import(pathToFileURL(built).href)
} else {
  const { register } = await import('tsx/esm/api')
  register()
  mod = await import(pathToFileURL(`${root}daemon/cli.ts`).href)
}
const code = await mod.main(process.argv.slice(2))
if (typeof code === 'number') process.exitCode = code
