#!/usr/bin/env node
// Entry point. In a source checkout the TypeScript sources run through tsx (never a stale build); an installed or
// container build without the sources runs the compiled `dist/` (npm run build).
import { existsSync } from 'node:fs'
import { fileURLToPath, pathToFileURL } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const source = `${root}daemon/cli.ts`
const built = `${root}dist/daemon/cli.js`
let mod
if (existsSync(source) && !process.env.BPO_USE_DIST) {
  const { register } = await import('tsx/esm/api')
  register()
  mod = await import(pathToFileURL(source).href)
} else {
  mod = await import(pathToFileURL(built).href)
}
const code = await mod.main(process.argv.slice(2))
if (typeof code === 'number') process.exitCode = code
