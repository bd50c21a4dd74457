/**
 * Test artifact server: the shipped dev server (daemon/dev/artifact-server.ts) plus failure modes per path
 * (404, 500, hang, wrong bytes) for provisioner tests.
 */
import type { ServerResponse } from 'node:http'
import { createTestCommon } from '../../core/common.js'
import { startArtifactServer as startDevArtifactServer } from '../../daemon/dev/artifact-server.js'

export type ArtifactFailure =
  /** Answer 404 Not Found. */
  | 'notFound'
  /** Answer 500 Internal Server Error. */
  | 'serverError'
  /** Accept the request and never answer. */
  | 'hang'
  /** Send the headers and part of the body, then stall forever. */
  | 'stall'
  /** Answer 200 with these bytes instead of the file (a digest mismatch). */
  | { body: Buffer | string }
  /** Redirect to another name on the same server. */
  | { redirectTo: string }

export type TestArtifactServer = {
  url: string
  urlOf(name: string): string
  sha256(name: string): string
  put(name: string, content: Buffer | string): void
  hits(name: string): number
  /** Make `name` fail the given way from now on; `undefined` serves it normally again. */
  fail(name: string, how: ArtifactFailure | undefined): void
  stop(): Promise<void>
}

/** Start an artifact server on 127.0.0.1, port 0, serving `files`. */
export async function startArtifactServer(files: Record<string, Buffer | string>): Promise<TestArtifactServer> {
  const failures = new Map<string, ArtifactFailure>()
  const hanging = new Set<ServerResponse>()
  const { common } = createTestCommon()
  const server = await startDevArtifactServer(common, {
    files,
    intercept(name, _req, res) {
      const how = failures.get(name)
      if (!how) return false
      if (how === 'notFound') res.writeHead(404).end('not found\n')
      else if (how === 'serverError') res.writeHead(500).end('boom\n')
      else if (how === 'hang') hanging.add(res)
      else if (how === 'stall') {
        res.writeHead(200, { 'content-length': '1000000' })
        res.write(Buffer.alloc(10))
        hanging.add(res)
      } else if ('body' in how) res.writeHead(200).end(how.body)
      else res.writeHead(302, { location: `/${encodeURIComponent(how.redirectTo)}` }).end()
      return true
    },
  })
  return {
    url: server.url,
    urlOf: server.urlOf,
    sha256: server.sha256,
    put: server.put,
    hits: server.hits,
    fail(name, how) {
      if (how === undefined) failures.delete(name)
      else failures.set(name, how)
    },
    async stop() {
      for (const res of hanging) res.destroy()
      hanging.clear()
      await server.stop()
    },
  }
}
