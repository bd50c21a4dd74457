/**
 * /api/events: server-sent events. `status` first (and with every tick), then `stage` for every service stage change
 * and `tick` after every reconcile pass; a comment every 15 s keeps proxies from closing the stream.
 */
import type { ServerResponse } from 'node:http'
import type { FastifyInstance } from 'fastify'
import type { HttpContext } from './context.js'
import { errors, HttpError } from './errors.js'
import { statusOf } from './operator.js'

const MAX_CLIENTS = 64

export function eventRoutes(app: FastifyInstance, ctx: HttpContext): { closeAll(): void } {
  const clients = new Set<ServerResponse>()
  app.get('/api/events', {
    schema: { tags: ['events'], summary: 'Server-sent events: status, stage, tick', produces: ['text/event-stream'], response: errors(503) },
    handler: async (req, reply) => {
      if (clients.size >= MAX_CLIENTS) throw new HttpError(503, 'TOO_MANY_CLIENTS', `at most ${MAX_CLIENTS} event streams at once`)
      reply.hijack()
      const res = reply.raw
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' })
      const send = (event: string, data: unknown) => res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`)
      send('status', statusOf(ctx))
      let lastStatus = Date.now()
      const off = ctx.bus.subscribe((e) => {
        if (e.type === 'stage') send('stage', e)
        else {
          send('tick', e)
          // the status (chain head, lag) at most once a second, however fast the loop
          if (Date.now() - lastStatus >= 1000) {
            lastStatus = Date.now()
            send('status', statusOf(ctx))
          }
        }
      })
      const ping = setInterval(() => res.write(': ping\n\n'), 15_000)
      clients.add(res)
      req.raw.on('close', () => {
        clearInterval(ping)
        off()
        clients.delete(res)
      })
    },
  })
  return {
    closeAll() {
      for (const c of clients) c.end()
      clients.clear()
    },
  }
}
