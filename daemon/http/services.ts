/**
 * /api/services (summaries), /api/services/:id (timeline, decision, spec, ledger, money) and the operator actions on
 * one service: POST /api/services/:id/restart and /stop, behind the admin token.
 */
import type { FastifyInstance } from 'fastify'
import { requireAdmin } from './auth.js'
import type { HttpContext } from './context.js'
import { errors, HttpError } from './errors.js'
import { idParams } from './schemas.js'
import { serviceSummary, serviceView } from './views.js'

const byId = (a: { serviceId: string }, b: { serviceId: string }) => (BigInt(a.serviceId) < BigInt(b.serviceId) ? -1 : BigInt(a.serviceId) > BigInt(b.serviceId) ? 1 : 0)

export function serviceRoutes(app: FastifyInstance, ctx: HttpContext): void {
  const admin = requireAdmin(ctx.adminToken)
  app.get('/api/services', {
    schema: {
      tags: ['services'],
      summary: 'Every service in the state file, by id',
      querystring: { type: 'object', properties: { state: { type: 'string', description: 'only services in this state' } } },
      response: { 200: { type: 'array', items: { $ref: 'ServiceSummary#' } } },
    },
    handler: async (req) => {
      const { state } = req.query as { state?: string }
      const now = ctx.now()
      return Object.values(ctx.store.read().services)
        .filter((s) => !state || s.state === state)
        .sort(byId)
        .map((s) => serviceSummary(s, now, ctx.config))
    },
  })
  app.get('/api/services/:id', {
    schema: { tags: ['services'], summary: 'One service: timeline (history), decision, spec, ledger and money', params: idParams, response: { 200: { $ref: 'Service#' }, ...errors(400, 404) } },
    handler: async (req) => {
      const { id } = req.params as { id: string }
      const s = ctx.store.read().services[BigInt(id).toString()]
      if (!s) throw new HttpError(404, 'SERVICE_NOT_FOUND', `no service ${id}`)
      return serviceView(s, ctx.now(), ctx.config)
    },
  })
  const actionResult = { type: 'object', additionalProperties: true, properties: { serviceId: { type: 'string' }, state: { type: 'string' }, endpoints: { type: 'array', items: { type: 'string' } } } }
  const secured = { security: [{ bearer: [] }] }
  app.post('/api/services/:id/restart', {
    schema: { tags: ['actions'], summary: "Restart an active service's replicas in place", ...secured, params: idParams, response: { 200: actionResult, ...errors(401, 403, 404, 409) } },
    preHandler: admin,
    handler: async (req) => ctx.actions.restart(BigInt((req.params as { id: string }).id).toString(), ctx.common.signal),
  })
  app.post('/api/services/:id/stop', {
    schema: {
      tags: ['actions'],
      summary: 'End a service: destroyed, earned withdrawn, the rest refunded with OPERATOR_STOPPED (202: the service manager carries it out)',
      ...secured,
      params: idParams,
      response: { 202: actionResult, ...errors(401, 403, 404, 409) },
    },
    preHandler: admin,
    handler: async (req, reply) => reply.code(202).send(await ctx.actions.stop(BigInt((req.params as { id: string }).id).toString())),
  })
}
