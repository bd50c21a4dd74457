import { readFileSync } from 'node:fs'
import { describe, expect, test } from 'vitest'
import { ApiException } from '@kubernetes/client-node'
import { AbortedError, TimeoutError } from '../../core/errors.js'
import { ProvisionError, TargetUnreachableError } from '../errors.js'
import { classifyKubernetesError, httpStatusOf, statusOf } from './classifyError.js'

// recorded apiserver Status bodies (../shared/fixtures/kubernetes, relative to the project root)
const recorded = (name: string) => readFileSync(new URL(`../../../shared/fixtures/kubernetes/${name}`, import.meta.url), 'utf8')
const apiError = (code: number, body: string | undefined) => new ApiException(code, 'Unknown API Status Code!', body, { 'content-type': 'application/json' })
const classify = (err: unknown) => classifyKubernetesError(err, 'kubernetes cluster c1', 'apply deployment ns/app')

describe('classifyKubernetesError', () => {
  test('default: 422 is a final ProvisionError with the Status message and one detail per cause', () => {
    const e = classify(apiError(422, recorded('status-422-invalid.deployment.json')))
    expect(e).toBeInstanceOf(ProvisionError)
    expect(e.retryable).toBe(false)
    expect(e.reason).toBe('PROVISION_FAILED')
    expect(e.shortMessage).toContain('Deployment.apps "test_deploy" is invalid')
    expect(e.details.slice(1)).toEqual(['metadata.name: ' + JSON.parse(recorded('status-422-invalid.deployment.json')).details.causes[0].message, 'spec.template.spec.containers: Required value'])
    expect(e.meta).toMatchObject({ httpStatus: 422, statusReason: 'Invalid' })
    expect(httpStatusOf(e)).toBe(422)
  })

  test('behavior: 409 Conflict and AlreadyExists are retryable ProvisionErrors; 404 keeps its status for callers', () => {
    for (const f of ['status-409-conflict.json', 'status-409-alreadyexists.json']) {
      const e = classify(apiError(409, recorded(f)))
      expect(e).toBeInstanceOf(ProvisionError)
      expect(e.retryable).toBe(true)
      expect(httpStatusOf(e)).toBe(409)
    }
    const nf = classify(apiError(404, recorded('status-404-notfound.json')))
    expect(nf.retryable).toBe(false)
    expect(nf.meta).toMatchObject({ httpStatus: 404, statusReason: 'NotFound' })
  })

  test('behavior: 5xx, 429, timeouts and socket errors are a retryable TargetUnreachableError', () => {
    const socket = Object.assign(new Error('request to https://127.0.0.1:1/api failed, reason: connect ECONNREFUSED'), { code: 'ECONNREFUSED', type: 'system' })
    for (const err of [apiError(503, undefined), apiError(500, '{"kind":"Status","code":500}'), apiError(429, undefined), new TimeoutError('x', 5), socket]) {
      const e = classify(err)
      expect(e).toBeInstanceOf(TargetUnreachableError)
      expect(e.retryable).toBe(true)
    }
  })

  test('behavior: an abort stays an abort; TLS verification failures are final', () => {
    const aborted = new AbortedError('x')
    expect(classify(aborted)).toBe(aborted)
    const tls = classify(Object.assign(new Error('self-signed certificate'), { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' }))
    expect(tls).toBeInstanceOf(ProvisionError)
    expect(tls.retryable).toBe(false)
  })

  test('args: statusOf reads string and object bodies, and nothing else', () => {
    expect(statusOf(recorded('status-404-notfound.json'))?.reason).toBe('NotFound')
    expect(statusOf(JSON.parse(recorded('status-409-conflict.json')))?.code).toBe(409)
    expect(statusOf('<html>bad gateway</html>')).toBeUndefined()
    expect(statusOf(JSON.parse(recorded('namespace-get.json')))).toBeUndefined()
  })
})
