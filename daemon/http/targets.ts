/**
 * /api/targets: every target with its capacity, what the services use of it, replicas wanted vs ready, last error.
 */
import type { FastifyInstance } from 'fastify'
import type { HttpContext } from './context.js'
import { targetView } from './views.js'

export function targetRoutes(app: FastifyInstance, ctx: HttpContext): void {
  app.get('/api/targets', {
    schema: { tags: ['targets'], summary: 'Targets: capacity used/free, replicas, last error', response: { 200: { type: 'array', items: { $ref: 'Target#' } } } },
    handler: async () => {
      const st = ctx.store.read()
      return ctx.targets.list().map((t) => targetView(t, st, ctx.usedOn))
    },
  })
}
