/**
 * /healthz (the process answers), /readyz (every named check; 503 when a critical one fails) and /metrics.
 */
import type { FastifyInstance } from 'fastify'
import type { HttpContext } from './context.js'

export function healthRoutes(app: FastifyInstance, ctx: HttpContext): void {
  app.get('/healthz', {
    schema: { tags: ['health'], summary: 'Liveness', response: { 200: { type: 'object', properties: { ok: { type: 'boolean' } } } } },
    handler: async () => ({ ok: true }),
  })
  const checks = {
    type: 'object',
    properties: {
      ready: { type: 'boolean' },
      checks: { type: 'array', items: { type: 'object', properties: { name: { type: 'string' }, ok: { type: 'boolean' }, critical: { type: 'boolean' }, detail: { type: 'string' } } } },
    },
  }
  app.get('/readyz', {
    schema: { tags: ['health'], summary: 'Readiness, with each check named', response: { 200: checks, 503: checks } },
    handler: async (_req, reply) => {
      const list = await ctx.checks()
      const ready = list.every((c) => c.ok || !c.critical)
      return reply.code(ready ? 200 : 503).send({ ready, checks: list })
    },
  })
  app.get('/metrics', {
    schema: { tags: ['health'], summary: 'Prometheus metrics (text format 0.0.4)', produces: ['text/plain'] },
    handler: async (_req, reply) => reply.type(ctx.common.metrics.contentType).send(await ctx.common.metrics.render()),
  })
}
