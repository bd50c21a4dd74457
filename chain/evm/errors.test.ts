import { ContractFunctionRevertedError, encodeErrorResult, HttpRequestError, InternalRpcError, InvalidParamsRpcError, LimitExceededRpcError, MethodNotFoundRpcError, RpcRequestError, TimeoutError } from 'viem'
import { describe, expect, test } from 'vitest'
import { serviceEscrowAbi } from '../contracts/abi.js'
import { AbortedError } from '../../core/errors.js'
import { classifyRpcError, isTransientRpcError, RpcRejectedError, RpcUnavailableError, TxRevertedError } from './errors.js'

const url = 'http://user:secret@rpc.example.com'
const rpcError = (code: number) => new RpcRequestError({ body: {}, error: { code, message: 'x' }, url })

describe('classifyRpcError', () => {
  test.each<[string, unknown, boolean]>([
    ['connection refused', new HttpRequestError({ url, cause: new TypeError('fetch failed') }), true],
    ['HTTP 503', new HttpRequestError({ url, status: 503 }), true],
    ['HTTP 429', new HttpRequestError({ url, status: 429 }), true],
    ['HTTP 401', new HttpRequestError({ url, status: 401 }), false],
    ['request timeout', new TimeoutError({ body: {}, url }), true],
    ['internal error', new InternalRpcError(rpcError(-32603)), true],
    ['limit exceeded', new LimitExceededRpcError(rpcError(-32005)), true],
    ['method not found', new MethodNotFoundRpcError(rpcError(-32601)), false],
    ['invalid params', new InvalidParamsRpcError(rpcError(-32602)), false],
  ])('args: %s', (_, err, transient) => {
    expect(isTransientRpcError(err)).toBe(transient)
    const e = classifyRpcError('eth_call', err)
    expect(e).toBeInstanceOf(transient ? RpcUnavailableError : RpcRejectedError)
    expect(e.code).toBe(transient ? 'RPC_UNAVAILABLE' : 'RPC_REJECTED')
    expect(e.retryable).toBe(transient)
    expect(e.message).not.toContain('secret')
  })

  test('behavior: a revert is decoded and never retryable', () => {
    const data = encodeErrorResult({ abi: serviceEscrowAbi, errorName: 'AlreadyEnded', args: [3n, 4] })
    const e = classifyRpcError('refund', new ContractFunctionRevertedError({ abi: serviceEscrowAbi, data, functionName: 'refund' }))
    expect(e).toBeInstanceOf(TxRevertedError)
    expect(e).toMatchObject({ code: 'TX_REVERTED', retryable: false, errorName: 'AlreadyEnded', args: [3n, 4] })
  })

  test('behavior: our own errors pass through', () => {
    const aborted = new AbortedError('x')
    expect(classifyRpcError('eth_call', aborted)).toBe(aborted)
  })
})
