/**
 * The HTTP API's errors: every answer that is not 2xx is `{ "error": { "code", "message" } }` with a stable code
 * documented in docs/errors.md.
 */
import type { FastifyError, FastifyInstance } from 'fastify'
import type { Logger } from '../../core/common.js'
import { BaseError } from '../../core/errors.js'
import { ActionError } from '../actions.js'

export class HttpError extends BaseError {
  override name = 'HttpError'
  readonly status: number
  constructor(status: number, code: string, message: string) {
    super(message, { code })
    this.status = status
  }
}

export const errorBody = {
  $id: 'Error',
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: { code: { type: 'string', description: 'stable code (docs/errors.md)' }, message: { type: 'string' } },
    },
  },
} as const

/** The error responses a route may give, for its schema. */
export const errors = (...statuses: number[]) => Object.fromEntries(statuses.map((s) => [s, { $ref: 'Error#' }]))

export function installErrorHandling(app: FastifyInstance, log: Logger): void {
  app.setNotFoundHandler((req, reply) => {
    void reply.code(404).send({ error: { code: 'NOT_FOUND', message: `no route ${req.method} ${req.url.split('?')[0]}` } })
  })
  app.setErrorHandler((err: FastifyError | BaseError, req, reply) => {
    if (err instanceof HttpError || err instanceof ActionError) return reply.code(err.status).send({ error: { code: err.code, message: err.shortMessage } })
    const fe = err as FastifyError
    if (fe.validation) return reply.code(400).send({ error: { code: 'BAD_REQUEST', message: fe.message } })
    if (fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500)
      return reply.code(fe.statusCode).send({ error: { code: 'BAD_REQUEST', message: fe.message } })
    log.error({ err, method: req.method, url: req.url.split('?')[0] }, 'http handler failed')
    return reply.code(500).send({ error: { code: 'INTERNAL_ERROR', message: 'internal error (see the daemon log)' } })
  })
}
