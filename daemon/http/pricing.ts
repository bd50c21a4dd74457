/**
 * /api/pricing (each price source: age, rows, health) and /api/quote (the CLI's quote for a spec).
 */
import type { FastifyInstance } from 'fastify'
import { quoteJson } from '../../pricing/quote.js'
import { quoteForConfig } from '../pricing.js'
import type { HttpContext } from './context.js'
import { errors } from './errors.js'

export function pricingRoutes(app: FastifyInstance, ctx: HttpContext): void {
  const source = {
    type: 'object',
    additionalProperties: true,
    properties: {
      source: { type: 'string' },
      rows: { type: 'integer', description: 'offers served' },
      ageSeconds: { type: ['number', 'null'] },
      fetchedAt: { type: ['string', 'null'] },
      healthy: { type: 'boolean', description: 'served offers and no error since the last refresh' },
      lastError: { type: ['string', 'null'] },
      nextRetryAt: { type: ['string', 'null'] },
    },
  }
  app.get('/api/pricing', {
    schema: {
      tags: ['pricing'],
      summary: 'Price sources: age, row count, health',
      response: { 200: { type: 'object', properties: { enabled: { type: 'boolean' }, sources: { type: 'array', items: source } } } },
    },
    handler: async () => {
      const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString())
      const rows = ctx.catalog?.health() ?? []
      return {
        enabled: Boolean(ctx.catalog),
        sources: rows.map((h) => ({
          source: h.source,
          rows: h.offers,
          ageSeconds: h.ageMs === undefined ? null : Math.round(h.ageMs / 1000),
          fetchedAt: iso(h.fetchedAt),
          healthy: h.offers > 0 && h.lastError === undefined,
          lastError: h.lastError ?? null,
          nextRetryAt: iso(h.nextRetryAt),
          ...(h.rejectedRows !== undefined && { rejectedRows: h.rejectedRows }),
          ...(h.notes && { notes: h.notes }),
        })),
      }
    },
  })
  app.get('/api/quote', {
    schema: {
      tags: ['pricing'],
      summary: 'Cheapest offers for a spec (the same as `blueprint-operator quote --config`)',
      querystring: {
        type: 'object',
        required: ['cpu', 'memory'],
        additionalProperties: false,
        properties: {
          cpu: { type: 'number', minimum: 0, description: 'vCPU' },
          memory: { type: 'number', minimum: 0, description: 'GiB' },
          storage: { type: 'number', minimum: 0, description: 'GiB' },
          gpu: { type: 'integer', minimum: 0, description: 'GPU count' },
          gpu_model: { type: 'string' },
          region: { type: 'array', items: { type: 'string' } },
          replicas: { type: 'integer', minimum: 1, maximum: 1000 },
          spot: { type: 'boolean' },
          top: { type: 'integer', minimum: 1, maximum: 50 },
        },
      },
      response: {
        200: {
          type: 'object',
          properties: {
            offers: { type: 'integer', description: 'offers considered' },
            quotes: { type: 'array', items: { type: 'object', additionalProperties: true } },
            notes: { type: 'array', items: { type: 'string' } },
            problems: { type: 'array', items: { type: 'string' } },
          },
        },
        404: {
          type: 'object',
          properties: {
            error: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' } } },
            nearest: { type: 'array', items: { type: 'object', properties: { provider: { type: 'string' }, region: { type: 'string' }, instanceType: { type: 'string' }, why: { type: 'array', items: { type: 'string' } } } } },
          },
        },
        ...errors(400),
      },
    },
    handler: async (req, reply) => {
      const q = req.query as { cpu: number; memory: number; storage?: number; gpu?: number; gpu_model?: string; region?: string[]; replicas?: number; spot?: boolean; top?: number }
      const res = await quoteForConfig(ctx.config, {
        cpu: q.cpu,
        memory: q.memory,
        ...(q.storage !== undefined && { storage: q.storage }),
        ...((q.gpu || q.gpu_model) && { gpu: { count: q.gpu ?? 1, ...(q.gpu_model && { model: q.gpu_model }) } }),
        ...(q.region && { regions: q.region }),
        ...(q.replicas && { replicas: q.replicas }),
        ...(q.spot !== undefined && { spot: q.spot }),
        ...(q.top && { top: q.top }),
      })
      if (!res.ok)
        return reply.code(404).send({
          error: { code: 'NO_FEASIBLE_OFFER', message: res.offers ? `no feasible offer among ${res.offers}` : `no offers: the catalog at ${res.cacheDir} is empty and no own machines are configured` },
          nearest: res.nearest.map((n) => ({ provider: n.offer.provider, region: n.offer.region, instanceType: n.offer.instanceType, why: n.why })),
        })
      return { offers: res.offers, quotes: res.quotes.map((x) => quoteJson(x.quote, x.tft)), notes: res.notes, problems: res.problems }
    },
  })
}
