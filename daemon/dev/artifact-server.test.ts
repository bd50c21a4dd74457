import { createHash } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, test } from 'vitest'
import { createTestCommon } from '../../core/common.js'
import { startArtifactServer } from './artifact-server.js'

const { common, shutdown } = createTestCommon()
afterAll(() => shutdown())
const hex = (b: string | Buffer) => createHash('sha256').update(b).digest('hex')
/** The error `f` throws (fails the test when it returns). */
function thrown(f: () => unknown): unknown {
  try {
    f()
  } catch (err) {
    return err
  }
  throw new Error('expected a throw')
}

describe('startArtifactServer', () => {
  test('default: serves files from a directory and from memory with their sha256', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'bpo-artsrv-'))
    await writeFile(join(dir, 'svc.mjs'), 'console.log(1)\n')
    const s = await startArtifactServer(common, { dir, files: { 'b.bin': Buffer.from([1, 2, 3]) } })
    try {
      expect(s.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
      const res = await fetch(s.urlOf('svc.mjs'))
      expect(res.status).toBe(200)
      expect(await res.text()).toBe('console.log(1)\n')
      expect(s.sha256('svc.mjs')).toBe(hex('console.log(1)\n'))
      expect(res.headers.get('x-sha256')).toBe(s.sha256('svc.mjs'))
      const b = Buffer.from(await (await fetch(s.urlOf('b.bin'))).arrayBuffer())
      expect(hex(b)).toBe(s.sha256('b.bin'))
      expect(s.hits('svc.mjs')).toBe(1)
    } finally {
      await s.stop()
      await rm(dir, { recursive: true, force: true })
    }
  })

  test('error: unknown names answer 404 and traversal is not served', async () => {
    const s = await startArtifactServer(common, { files: { a: 'x' } })
    try {
      expect((await fetch(`${s.url}/nope`)).status).toBe(404)
      expect((await fetch(`${s.url}/..%2Fetc%2Fpasswd`)).status).toBe(404)
      expect(thrown(() => s.sha256('nope'))).toMatchObject({ code: 'ARTIFACT_NOT_SERVED', message: expect.stringMatching(/no artifact/) })
      expect(thrown(() => s.put('../x', 'y'))).toMatchObject({ code: 'ARTIFACT_NAME_INVALID', message: expect.stringMatching(/invalid artifact name/) })
      // a refused name is not served afterwards either
      expect((await fetch(`${s.url}/..%2Fx`)).status).toBe(404)
    } finally {
      await s.stop()
    }
  })

  test('error: an invalid name among the served files refuses to start (ARTIFACT_NAME_INVALID)', async () => {
    await expect(startArtifactServer(common, { files: { '.hidden': 'x' } })).rejects.toMatchObject({ code: 'ARTIFACT_NAME_INVALID' })
  })

  test('behavior: intercept answers instead of the file', async () => {
    const s = await startArtifactServer(common, {
      files: { a: 'x' },
      intercept: (name, _req, res) => (name === 'a' ? (res.writeHead(503).end(), true) : false),
    })
    try {
      expect((await fetch(s.urlOf('a'))).status).toBe(503)
    } finally {
      await s.stop()
    }
  })
})
