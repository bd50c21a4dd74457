/**
 * The dashboard: one HTML page, a stylesheet and a small vanilla script, served from the daemon (no build step, no
 * network). The script reads the JSON API and follows /api/events.
 */
import { readFileSync } from 'node:fs'
import type { FastifyInstance } from 'fastify'
import type { HttpContext } from './context.js'

const file = (name: string) => readFileSync(new URL(`./static/${name}`, import.meta.url), 'utf8')

export function dashboardRoutes(app: FastifyInstance, _ctx: HttpContext): void {
  const files = { html: file('dashboard.html'), js: file('dashboard.js'), css: file('dashboard.css') }
  const csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
  app.get('/', { schema: { hide: true } }, async (_req, reply) => reply.type('text/html; charset=utf-8').header('content-security-policy', csp).send(files.html))
  app.get('/dashboard.js', { schema: { hide: true } }, async (_req, reply) => reply.type('text/javascript; charset=utf-8').send(files.js))
  app.get('/dashboard.css', { schema: { hide: true } }, async (_req, reply) => reply.type('text/css; charset=utf-8').send(files.css))
}
