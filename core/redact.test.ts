import { Writable } from 'node:stream'
import { describe, expect, test } from 'vitest'
import { createCommon } from './common.js'
import { BaseError } from './errors.js'
import { createRedactor, isKeyLike, redactDeep, redactText, redactUrl } from './redact.js'

describe('redactUrl', () => {
  test('default: hosted RPC URL forms lose their keys, keep scheme, host, port and words', () => {
    expect(redactUrl('https://mainnet.infura.io/v3/9aa3d95b3bc440fa88ea12eaa4456161')).toBe('https://mainnet.infura.io/v3/***')
    expect(redactUrl('https://eth-mainnet.g.alchemy.com/v2/Xy7_abcdefGHIJ')).toBe('https://eth-mainnet.g.alchemy.com/v2/***')
    expect(redactUrl('https://rpc.ankr.com/eth/5e1f0c2a8b7d4e6f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f')).toBe('https://rpc.ankr.com/eth/***')
    expect(redactUrl('https://x.quiknode.pro/3f8e2b1c9d7a6e5f4b3c2d1e0f9a8b7c/')).toBe('https://x.quiknode.pro/***/')
    expect(redactUrl('https://node.example/rpc?apikey=s3cr3t&chain=1&flag')).toBe('https://node.example/rpc?apikey=***&chain=***&flag')
    expect(redactUrl('wss://user:pa55@node.example:8546/ws#frag')).toBe('wss://***@node.example:8546/ws#***')
    expect(redactUrl('http://127.0.0.1:8545')).toBe('http://127.0.0.1:8545')
    expect(redactUrl('http://127.0.0.1:20000/healthz')).toBe('http://127.0.0.1:20000/healthz')
    // base58 (no digits-only words) and base64url keys
    expect(redactUrl('https://solana.example/5KQwrPbwdL6PhXujxW37FSSQZ1JiwsST4cqQzDeyXtP9')).toBe('https://solana.example/***')
    expect(redactUrl('not a url')).toBe('not a url')
  })

  test('behavior: words are not key-like, keys are', () => {
    for (const w of ['healthz', 'mainnet', 'eth', 'api', 'demo-service', 'v3', 'artifacts']) expect(isKeyLike(w), w).toBe(false)
    for (const k of ['9aa3d95b3bc440fa88ea12eaa4456161', '0xdeadbeefdeadbeefdeadbeef', 'c4n4ryP4thK3y0123456789abcdef']) expect(isKeyLike(k), k).toBe(true)
  })
})

describe('redactText', () => {
  test('default: every URL inside text, trailing punctuation kept; known secrets masked anywhere', () => {
    const viemLike = 'HTTP request failed.\n\nURL: https://node.example/v3/9aa3d95b3bc440fa88ea12eaa4456161?key=abc\nRequest body: {"method":"eth_blockNumber"}'
    const out = redactText(viemLike)
    expect(out).toContain('URL: https://node.example/v3/***?key=***\n')
    expect(out).not.toContain('9aa3d95b')
    expect(redactText('see (http://u:p@h/x).')).toBe('see (http://***@h/x).')
    expect(createRedactor(['0xprivatekeyvalue', 'short'])('key=0xprivatekeyvalue short')).toBe('key=*** short')
  })

  test('behavior: BaseError redacts its message, details and a wrapped library error\'s text', () => {
    const cause = new Error('fetch failed at https://node.example/v3/9aa3d95b3bc440fa88ea12eaa4456161?apikey=zzz')
    const e = new BaseError('call to https://node.example/?apikey=yyy failed', { code: 'X', cause })
    expect(e.message).not.toMatch(/9aa3d95b|apikey=zzz|apikey=yyy/)
    expect(e.message).toContain('cause: fetch failed at https://node.example/v3/***?apikey=***')
    const d = new BaseError('x', { code: 'X', details: ['url: https://a:b@node.example/'] })
    expect(d.details).toEqual(['url: https://***@node.example/'])
  })

  test('behavior: redactDeep copies plain objects with every string redacted', () => {
    const v = { a: ['https://h/v3/9aa3d95b3bc440fa88ea12eaa4456161'], b: { c: 1, d: 'x' } }
    expect(redactDeep(v)).toEqual({ a: ['https://h/v3/***'], b: { c: 1, d: 'x' } })
    expect(v.a[0]).toContain('9aa3')
  })

  test('behavior: every log line is redacted, errors and their causes included', () => {
    let out = ''
    const destination = new Writable({
      write(chunk, _enc, cb) {
        out += String(chunk)
        cb()
      },
    })
    const { common } = createCommon({ level: 'debug', destination, secrets: ['0xsupersecretkeyvalue'] })
    const err = new Error('request to https://node.example/v3/9aa3d95b3bc440fa88ea12eaa4456161 failed', { cause: new Error('inner https://x/?token=abcd') })
    common.logger.info({ rpc: 'https://node.example/?apikey=abc', key: '0xsupersecretkeyvalue', err }, 'starting https://u:p@node.example/')
    expect(out).toContain('"rpc":"https://node.example/?apikey=***"')
    expect(out).not.toMatch(/9aa3d95b|apikey=abc"|token=abcd|0xsupersecretkeyvalue|u:p@/)
  })
})
