/**
 * /api/status (operator, chain head / cursor / lag, drain, counts) and POST /api/operator/drain (stop or resume
 * taking new requests at run time; behind the admin token).
 */
import type { FastifyInstance } from 'fastify'
import type { Capabilities } from '../../provisioners/types.js'
import { requireAdmin } from './auth.js'
import type { HttpContext } from './context.js'
import { errors } from './errors.js'

/** The status document (also the first message of /api/events). */
export function statusOf(ctx: HttpContext) {
  const services = Object.values(ctx.store.read().services)
  const byState: Record<string, number> = {}
  for (const s of services) byState[s.state] = (byState[s.state] ?? 0) + 1
  return {
    operatorId: ctx.config.operator.id,
    operator: ctx.operator,
    chain: ctx.chain(),
    draining: ctx.actions.draining(),
    actionsEnabled: Boolean(ctx.adminToken),
    token: { symbol: ctx.config.token.symbol, decimals: ctx.config.token.decimals },
    services: services.length,
    byState,
    targets: ctx.targets.list().map((t) => t.name),
    // what each target's machine allows, by target (the local target: whether podman runs containers, or why not)
    capabilities: capabilitiesOf(ctx),
    loopIntervalMs: ctx.config.loop.intervalMs,
    now: new Date(Number(ctx.now()) * 1000).toISOString(),
    ...ctx.extra?.(),
  }
}

/** Each target's capabilities (provisioners that check what their machine allows), by target name. */
function capabilitiesOf(ctx: HttpContext): Record<string, Capabilities> {
  const out: Record<string, Capabilities> = {}
  for (const t of ctx.targets.list()) if (t.provisioner.capabilities) out[t.name] = t.provisioner.capabilities()
  return out
}

export function operatorRoutes(app: FastifyInstance, ctx: HttpContext): void {
  app.get('/api/status', {
    schema: {
      tags: ['operator'],
      summary: 'Operator, chain head/cursor/lag, drain state and service counts',
      response: {
        200: {
          type: 'object',
          additionalProperties: true,
          properties: {
            operatorId: { type: 'string' },
            operator: { type: 'string' },
            chain: { type: 'object', additionalProperties: true, properties: { chainId: { type: 'integer' }, head: { type: 'string' }, cursor: { type: 'string' }, lag: { type: 'integer' } } },
            draining: { type: 'boolean' },
            services: { type: 'integer' },
            capabilities: { type: 'object', additionalProperties: true, description: 'By target: what its machine allows, e.g. local.container {ok, detail} or {ok: false, reason}' },
          },
        },
      },
    },
    handler: async () => statusOf(ctx),
  })
  app.post('/api/operator/drain', {
    schema: {
      tags: ['actions'],
      summary: 'Refuse new requests (refunded with OPERATOR_DRAINING) or take them again; existing services keep running',
      security: [{ bearer: [] }],
      body: { type: ['object', 'null'], additionalProperties: false, properties: { draining: { type: 'boolean', default: true } } },
      response: { 200: { type: 'object', properties: { draining: { type: 'boolean' } } }, ...errors(400, 401, 403) },
    },
    preHandler: requireAdmin(ctx.adminToken),
    handler: async (req) => ctx.actions.drain((req.body as { draining?: boolean } | null)?.draining ?? true),
  })
}
