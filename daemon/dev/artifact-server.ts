/**
 * A tiny static file server for `npm run dev`: serves blueprint artifacts over HTTP and knows their sha256, so the dev
 * setup can register a native source (URL + digest) that the local provisioner downloads and verifies.
 */
import { createHash } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import type { Common } from '../../core/common.js'
import { BaseError } from '../../core/errors.js'

export type ArtifactServerParameters = {
  /** Serve every regular file of this directory (read once at start). */
  dir?: string
  /** Serve these contents under these names (merged over `dir`). */
  files?: Record<string, Buffer | string>
  /** Default 127.0.0.1. */
  host?: string
  /** Default 0 (chosen by the OS). */
  port?: number
  /**
   * Called before a request is served; return true when it answered the request itself (tests use it to make a path
   * fail or hang).
   */
  intercept?: (name: string, req: IncomingMessage, res: ServerResponse) => boolean
}

export type ArtifactServer = {
  /** Base URL without a trailing slash, e.g. http://127.0.0.1:41234. */
  url: string
  /** URL of one served file. */
  urlOf(name: string): string
  /** Lowercase hex sha256 of one served file. */
  sha256(name: string): string
  /** Replace or add a file at run time. */
  put(name: string, content: Buffer | string): void
  /** How many GET requests reached this name (served or intercepted). */
  hits(name: string): number
  /** Stop listening and drop open connections. */
  stop(): Promise<void>
}

export class ArtifactServerError extends BaseError {
  override name = 'ArtifactServerError'
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$/

/** Start the dev artifact server on 127.0.0.1 (port chosen by the OS unless given). */
export async function startArtifactServer(common: Common, p: ArtifactServerParameters): Promise<ArtifactServer> {
  const log = common.logger
  const files = new Map<string, { body: Buffer; sha256: string }>()
  const hits = new Map<string, number>()
  const put = (name: string, content: Buffer | string) => {
    if (!NAME.test(name)) throw new ArtifactServerError(`invalid artifact name ${JSON.stringify(name)}`, { code: 'ARTIFACT_NAME_INVALID' })
    const body = Buffer.isBuffer(content) ? content : Buffer.from(content)
    files.set(name, { body, sha256: createHash('sha256').update(body).digest('hex') })
  }
  if (p.dir) {
    for (const entry of await readdir(p.dir, { withFileTypes: true })) {
      if (entry.isFile() && NAME.test(entry.name)) put(entry.name, await readFile(join(p.dir, entry.name)))
    }
  }
  for (const [name, content] of Object.entries(p.files ?? {})) put(name, content)

  const server = createServer((req, res) => {
    const name = decodeURIComponent((req.url ?? '/').split('?')[0]!.replace(/^\/+/, ''))
    if (req.method === 'GET') hits.set(name, (hits.get(name) ?? 0) + 1)
    if (p.intercept?.(name, req, res)) return
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end()
      return
    }
    const file = files.get(name)
    if (!file) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n')
      return
    }
    res.writeHead(200, {
      'content-type': 'application/octet-stream',
      'content-length': String(file.body.length),
      'x-sha256': file.sha256,
    })
    res.end(req.method === 'HEAD' ? undefined : file.body)
  })
  const host = p.host ?? '127.0.0.1'
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(p.port ?? 0, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const { port } = server.address() as AddressInfo
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`
  log.info({ url, files: [...files.keys()] }, 'artifact server listening')
  let stopped: Promise<void> | undefined
  return {
    url,
    urlOf: (name) => `${url}/${encodeURIComponent(name)}`,
    sha256(name) {
      const f = files.get(name)
      if (!f) throw new ArtifactServerError(`no artifact named ${JSON.stringify(name)}`, { code: 'ARTIFACT_NOT_SERVED' })
      return f.sha256
    },
    put,
    hits: (name) => hits.get(name) ?? 0,
    stop() {
      stopped ??= new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      })
      return stopped
    },
  }
}
