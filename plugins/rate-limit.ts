import rateLimit from '@fastify/rate-limit'
import fp from 'fastify-plugin'
import { deploymentKey } from '../lib/support/deployment-key.ts'
import { databaseOf } from './config.ts'
import { HttpError } from './errors.ts'

/**
 * Optional per-principal limit on booking requests (RATE_LIMIT_MAX per
 * RATE_LIMIT_WINDOW_MS; 0 = off). Counted in Redis when REDIS_NODES is set, so
 * the limit holds across instances; if Redis fails the limit is skipped rather
 * than refusing sales.
 */
export default fp(async (fastify) => {
  const { RATE_LIMIT_MAX, RATE_LIMIT_WINDOW_MS } = fastify.config
  if (RATE_LIMIT_MAX === 0) return
  await fastify.register(rateLimit, {
    global: false,
    max: RATE_LIMIT_MAX,
    timeWindow: RATE_LIMIT_WINDOW_MS,
    // routes/bookings.ts runs it as a preHandler, after authentication: the key is
    // the principal, never a body field (behind AUTH_DISABLED, the client address)
    keyGenerator: (request) => request.principal.sub === '' ? `ip:${request.ip}` : `sub:${request.principal.sub}`,
    // counted per deployment: another sharing the Redis has its own counts for the same subs
    ...(fastify.redis.length > 0 ? { redis: fastify.redis[0], nameSpace: `booking-rate-limit:${deploymentKey(databaseOf(fastify.config))}:` } : {}),
    skipOnError: true,
    errorResponseBuilder: (_request, context) => {
      const retryAfter = Math.ceil(context.ttl / 1000)
      return new HttpError('RATE_LIMITED', `Too many booking requests: at most ${context.max} per window, retry in ${retryAfter} s`, 'limit', { retryAfter })
    }
  })
}, { name: 'rate-limit', dependencies: ['config', 'redis', 'errors', 'auth'] })
