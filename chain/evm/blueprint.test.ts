import type { Hex } from 'viem'
import { describe, expect, test } from 'vitest'
import { decodeBlueprint, decodeSource, isImageRepository, type RawBlueprint } from './blueprint.js'

const digest = `0x${'ab'.repeat(32)}` as Hex
const hex = 'ab'.repeat(32)

describe('decodeSource', () => {
  test.each([
    ['native https', { kind: 0, uri: 'https://example.com/bin/app', digest }, { kind: 'native', url: 'https://example.com/bin/app', sha256: hex }],
    ['native http with port', { kind: 0, uri: 'http://127.0.0.1:8080/app', digest }, { kind: 'native', url: 'http://127.0.0.1:8080/app', sha256: hex }],
    ['testing', { kind: 2, uri: 'http://localhost/x', digest }, { kind: 'testing', url: 'http://localhost/x', sha256: hex }],
    ['container', { kind: 1, uri: 'ghcr.io/acme/echo', digest }, { kind: 'container', image: 'ghcr.io/acme/echo', digest: `sha256:${hex}` }],
    ['container on a local registry', { kind: 1, uri: 'localhost:5000/x', digest }, { kind: 'container', image: 'localhost:5000/x', digest: `sha256:${hex}` }],
    ['container, docker hub short name', { kind: 1, uri: 'busybox', digest }, { kind: 'container', image: 'busybox', digest: `sha256:${hex}` }],
    ['upper-case digest is lowered', { kind: 0, uri: 'https://e.com/a', digest: `0x${'AB'.repeat(32)}` as Hex }, { kind: 'native', url: 'https://e.com/a', sha256: hex }],
  ])('default: %s', (_, raw, source) => {
    expect(decodeSource(raw)).toEqual({ ok: true, source })
  })

  test.each([
    ['ftp URL', { kind: 0, uri: 'ftp://example.com/app', digest }, /scheme ftp: is not http: or https:/],
    ['file URL', { kind: 2, uri: 'file:///etc/passwd', digest }, /scheme file:/],
    ['not a URL', { kind: 0, uri: 'example.com/app', digest }, /is not a URL/],
    ['credentials in URL', { kind: 0, uri: 'https://user:secret@example.com/app', digest }, /carries credentials/],
    ['zero digest', { kind: 0, uri: 'https://example.com/app', digest: `0x${'00'.repeat(32)}` as Hex }, /digest is zero/],
    ['short digest', { kind: 0, uri: 'https://example.com/app', digest: '0xabcd' as Hex }, /not 32 bytes/],
    ['image with tag', { kind: 1, uri: 'ghcr.io/acme/echo:latest', digest }, /not an image repository name/],
    ['image with digest', { kind: 1, uri: `ghcr.io/acme/echo@sha256:${hex}`, digest }, /not an image repository name/],
    ['image upper case path', { kind: 1, uri: 'ghcr.io/Acme/echo', digest }, /not an image repository name/],
    ['image URL', { kind: 1, uri: 'https://ghcr.io/acme/echo', digest }, /not an image repository name/],
    ['empty image', { kind: 1, uri: '', digest }, /not an image repository name/],
    ['unknown kind', { kind: 7, uri: 'https://example.com/app', digest }, /unknown source kind 7/],
  ])('error: %s', (_, raw, message) => {
    const r = decodeSource(raw)
    expect(r.ok).toBe(false)
    if (!r.ok) expect(r.error).toMatch(message)
  })

  test('behavior: credentials never appear in the error', () => {
    const r = decodeSource({ kind: 0, uri: 'https://user:hunter2@example.com/app', digest })
    expect(JSON.stringify(r)).not.toContain('hunter2')
  })
})

describe('isImageRepository', () => {
  test.each([
    ['a', true],
    ['a/b/c', true],
    ['my-registry.example.com:443/team/app_name', true],
    ['a__b', true],
    ['a___b', false],
    ['-a', false],
    ['a/', false],
    ['a'.repeat(256), false],
  ])('args: %s', (name, ok) => {
    expect(isImageRepository(name)).toBe(ok)
  })
})

describe('decodeBlueprint', () => {
  const raw: RawBlueprint = {
    id: 7n,
    developer: '0x00000000000000000000000000000000000000aa',
    name: 'echo',
    sources: [
      { kind: 0, uri: 'https://example.com/echo', digest },
      { kind: 1, uri: 'bad image:tag', digest },
    ],
    requirements: { vcpuMilli: 1500, memoryMiB: 512, storageGiB: 10, gpuCount: 1, gpuModel: 'A100', ports: [8080, 9090] },
    pricePerHour: [1n, 2n, 3n],
  }

  test('default: units converted, each source validated on its own', () => {
    const b = decodeBlueprint(raw)
    expect(b).toMatchObject({
      id: 7n,
      name: 'echo',
      requirements: { vcpu: 1.5, memoryGiB: 0.5, storageGiB: 10, gpu: { count: 1, model: 'A100' }, ports: [8080, 9090] },
      pricePerHour: [1n, 2n, 3n],
    })
    expect(b.sources[0]).toEqual({ ok: true, source: { kind: 'native', url: 'https://example.com/echo', sha256: hex } })
    expect(b.sources[1]!.ok).toBe(false)
  })

  test('args: no GPU model means any model', () => {
    expect(decodeBlueprint({ ...raw, requirements: { ...raw.requirements, gpuCount: 0, gpuModel: '' } }).requirements.gpu).toEqual({ count: 0, model: undefined })
  })
})
