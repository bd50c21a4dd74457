/**
 * EC2 API errors (as thrown by @aws-sdk/client-ec2) to our error classes, by the error code EC2 returns — never by
 * message text: failover classes for placement, rate limits and server faults retryable, the rest not.
 */
import { AbortedError, BaseError, TimeoutError } from '../../core/errors.js'
import { TargetUnreachableError } from '../errors.js'
import { CloudRateLimitedError, cloudApiError, failoverError } from '../cloud/errors.js'

const CAPACITY = new Set(['InsufficientInstanceCapacity', 'InsufficientHostCapacity', 'InsufficientCapacity', 'InsufficientReservedInstanceCapacity', 'InsufficientFreeAddressesInSubnet', 'Unsupported', 'InsufficientCapacityOnHost'])
const QUOTA = new Set(['VcpuLimitExceeded', 'InstanceLimitExceeded', 'MaxSpotInstanceCountExceeded', 'SecurityGroupLimitExceeded', 'VolumeLimitExceeded', 'AddressLimitExceeded', 'ResourceLimitExceeded'])
const AUTH = new Set(['UnauthorizedOperation', 'AuthFailure', 'InvalidClientTokenId', 'SignatureDoesNotMatch', 'Blocked', 'PendingVerification', 'InvalidAccessKeyId'])
const REGION = new Set(['OptInRequired', 'InvalidRegion', 'UnsupportedOperation'])
const PRICE = new Set(['SpotMaxPriceTooLow'])
const THROTTLE = new Set(['RequestLimitExceeded', 'Throttling', 'ThrottlingException', 'TooManyRequestsException'])
const SERVER = new Set(['InternalError', 'InternalFailure', 'ServiceUnavailable', 'Unavailable'])

type SdkError = { name?: string; Code?: string; $metadata?: { httpStatusCode?: number }; $response?: { headers?: Record<string, string> } }

/** The EC2 error code of an SDK error ("InsufficientInstanceCapacity"), or undefined for a network error. */
export function ec2ErrorCode(err: unknown): string | undefined {
  const e = err as SdkError
  if (!e || typeof e !== 'object' || !e.$metadata?.httpStatusCode) return undefined
  return e.Code ?? e.name
}

/** Map an error of one EC2 call to the error we throw. */
export function classifyEc2Error(err: unknown, what: string): Error {
  if (err instanceof BaseError || err instanceof AbortedError || err instanceof TimeoutError) return err
  const code = ec2ErrorCode(err)
  const status = (err as SdkError).$metadata?.httpStatusCode
  if (code === undefined) {
    if ((err as { name?: string }).name === 'AbortError') return new AbortedError(`ec2 ${what}`)
    return new TargetUnreachableError('aws ec2 API', err, [`${what}: ${(err as Error).message ?? String(err)}`])
  }
  const msg = `${what}: ${code}`
  if (CAPACITY.has(code)) return failoverError('aws', { kind: 'capacity', scope: 'offer' }, msg, { providerCode: code, cause: err })
  if (QUOTA.has(code)) return failoverError('aws', { kind: 'quota', scope: 'region' }, msg, { providerCode: code, cause: err })
  if (AUTH.has(code)) return failoverError('aws', { kind: 'auth', scope: 'provider' }, msg, { providerCode: code, cause: err })
  if (REGION.has(code)) return failoverError('aws', { kind: 'region-unavailable', scope: 'region' }, msg, { providerCode: code, cause: err })
  if (PRICE.has(code)) return failoverError('aws', { kind: 'price-changed', scope: 'offer' }, msg, { providerCode: code, cause: err })
  if (THROTTLE.has(code)) return new CloudRateLimitedError('aws', undefined, err)
  if (SERVER.has(code) || (status !== undefined && status >= 500)) return new TargetUnreachableError('aws ec2 API', err, [msg])
  return cloudApiError('aws', msg, { providerCode: code, status, cause: err })
}
