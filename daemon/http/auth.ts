/**
 * Bearer-token check for the operator actions: constant-time comparison of SHA-256 digests (equal length whatever
 * is sent), 401 without a valid token, 403 when no `[http] admin_token` is configured. The token is never logged.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyRequest } from 'fastify'
import type { Secret } from '../../config/secrets.js'
import { HttpError } from './errors.js'

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest()

/** A preHandler that admits only `Authorization: Bearer <admin token>`. */
export function requireAdmin(token: Secret | undefined) {
  const want = token ? digest(token.reveal()) : undefined
  return async (req: FastifyRequest): Promise<void> => {
    if (!want) throw new HttpError(403, 'ACTIONS_DISABLED', 'operator actions are disabled: set [http] admin_token (a secret reference) to enable them')
    const h = req.headers.authorization ?? ''
    const m = /^Bearer (.+)$/i.exec(h)
    const ok = m ? timingSafeEqual(digest(m[1]!.trim()), want) : false
    if (!ok) throw new HttpError(401, 'UNAUTHORIZED', m ? 'the bearer token is not the admin token' : 'this action needs Authorization: Bearer <admin token>')
  }
}
