/**
 * The daemon's HTTP surface on fastify: health, readiness, metrics, the JSON API with a JSON schema per route (an
 * OpenAPI document generated from them at /api/openapi.json), server-sent events, the operator actions behind the
 * admin token, and the dashboard at /. Binds `[http] listen` (127.0.0.1:9464 by default).
 */
import swagger from '@fastify/swagger'
import Fastify from 'fastify'
import { BaseError } from '../../core/errors.js'
import type { HttpContext } from './context.js'
import { dashboardRoutes } from './dashboard.js'
import { errorBody, installErrorHandling } from './errors.js'
import { eventRoutes } from './events.js'
import { healthRoutes } from './health.js'
import { operatorRoutes } from './operator.js'
import { pricingRoutes } from './pricing.js'
import { serviceSummarySchema, serviceViewSchema, targetSchema } from './schemas.js'
import { serviceRoutes } from './services.js'
import { targetRoutes } from './targets.js'

export type { HttpContext } from './context.js'

export type HttpServer = { url: string; close(): Promise<void> }

export type StartHttpParameters = HttpContext & { host: string; port: number }

export async function startHttpServer(p: StartHttpParameters): Promise<HttpServer> {
  const log = p.common.logger
  // fastify's own request log would carry headers; the daemon logs what it needs itself (never the admin token)
  const app = Fastify({ logger: false, requestTimeout: 10_000, connectionTimeout: 10_000, forceCloseConnections: true, bodyLimit: 64 * 1024 })
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: { title: 'blueprint-operator', version: '1', description: 'The operator daemon: services, targets, prices, events and operator actions. Errors: { error: { code, message } } (docs/errors.md).' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: '[http] admin_token' } } },
    },
  })
  app.addSchema(errorBody)
  app.addSchema(serviceSummarySchema)
  app.addSchema(serviceViewSchema)
  app.addSchema(targetSchema)
  installErrorHandling(app, log)
  app.addHook('onSend', async (_req, reply, payload) => {
    reply.header('x-content-type-options', 'nosniff')
    if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store')
    return payload
  })
  app.addHook('onResponse', async (req, reply) => {
    if (req.method !== 'GET') log.info({ method: req.method, url: req.url.split('?')[0], status: reply.statusCode }, 'http action')
  })
  healthRoutes(app, p)
  serviceRoutes(app, p)
  targetRoutes(app, p)
  pricingRoutes(app, p)
  operatorRoutes(app, p)
  const events = eventRoutes(app, p)
  dashboardRoutes(app, p)
  app.get('/api/openapi.json', { schema: { hide: true } }, async () => app.swagger())
  app.addHook('preClose', async () => events.closeAll())

  try {
    await app.listen({ host: p.host, port: p.port })
  } catch (err) {
    await app.close().catch(() => undefined)
    const code = (err as NodeJS.ErrnoException).code
    throw new BaseError(`http.listen: cannot listen on ${p.host}:${p.port}${code === 'EADDRINUSE' ? ' (the address is already in use)' : code === 'EADDRNOTAVAIL' ? ' (no such local address)' : code === 'EACCES' ? ' (permission denied)' : ''}`, {
      code: 'HTTP_LISTEN_FAILED',
      details: ['change [http] listen in the configuration, or stop what holds the port'],
      cause: err,
    })
  }
  const addr = app.server.address()
  const url = typeof addr === 'object' && addr ? `http://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}` : `http://${p.host}:${p.port}`
  log.info({ url }, 'http listening')
  return { url, close: () => app.close() }
}
