import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, test } from 'vitest'
import { resolveSecret } from './secrets.js'

describe('resolveSecret', () => {
  test('default: env: and file: (owner-only) references', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bpo-secret-'))
    writeFileSync(join(dir, 'k'), 'value-from-file\n', { mode: 0o600 })
    expect(resolveSecret('env:S', { S: 'value-from-env' }).reveal()).toBe('value-from-env')
    expect(resolveSecret('file:k', {}, dir).reveal()).toBe('value-from-file')
  })

  test('error: SECRET_UNRESOLVED for a missing variable or file, and for a file its group or others can read; the value never shown', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bpo-secret-'))
    expect(() => resolveSecret('env:NOT_SET_ANYWHERE', {})).toThrow(expect.objectContaining({ code: 'SECRET_UNRESOLVED', shortMessage: 'environment variable NOT_SET_ANYWHERE is not set' }))
    expect(() => resolveSecret('file:nope', {}, dir)).toThrow(expect.objectContaining({ code: 'SECRET_UNRESOLVED', shortMessage: 'cannot read secret file nope: ENOENT' }))
    writeFileSync(join(dir, 'open'), 'leaky-secret-value', { mode: 0o600 })
    chmodSync(join(dir, 'open'), 0o644)
    let err: Error | undefined
    try {
      resolveSecret('file:open', {}, dir)
    } catch (e) {
      err = e as Error
    }
    expect(err).toMatchObject({ code: 'SECRET_UNRESOLVED', retryable: false })
    expect(err!.message).toMatch(/secret file open is readable or writable by its group or others \(mode 0644\): chmod 600 it/)
    expect(err!.message).not.toContain('leaky-secret-value')
  })
})
