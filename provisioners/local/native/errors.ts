/** The errors the local process runner throws from several steps (one place each). */
import { AbortedError } from '../../../core/errors.js'
import { ProvisionError } from '../../errors.js'

export const configInvalid = (message: string) => new ProvisionError(message, { code: 'CONFIG_INVALID' })

export const invalid = (problems: string[]) =>
  new ProvisionError('invalid deployment request', { code: 'REQUEST_INVALID', reason: 'MALFORMED_REQUEST', details: problems })

export const notFound = (id: string) =>
  new ProvisionError(`deployment ${id} does not exist on this host`, { code: 'DEPLOYMENT_NOT_FOUND', reason: 'PROVISION_FAILED', meta: { deploymentId: id } })

export function checkAborted(signal: AbortSignal, what: string) {
  if (signal.aborted) throw new AbortedError(what, signal.reason)
}
