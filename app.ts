/**
 * The app: a plugin that registers the outside concerns (plugins/), then the
 * routes. server.ts runs it as a process; tests build it with Fastify + inject.
 */
import { randomUUID } from 'node:crypto'
import type { Server } from 'node:http'
import { LogController, type FastifyHttpOptions, type FastifyInstance, type FastifyLoggerOptions } from 'fastify'
import authPlugin from './plugins/auth.ts'
import webhooksPlugin from './plugins/webhooks.ts'
import changeRoutes from './routes/changes.ts'
import waitlistRoutes from './routes/waitlist.ts'
import bookingPlugin from './plugins/booking.ts'
import configPlugin, { type ConfigPluginOptions } from './plugins/config.ts'
import errorsPlugin, { clientErrorHandler, frameworkErrors } from './plugins/errors.ts'
import httpLimitsPlugin from './plugins/http-limits.ts'
import metricsPlugin from './plugins/metrics.ts'
import rateLimitPlugin from './plugins/rate-limit.ts'
import redisPlugin from './plugins/redis.ts'
import schemasPlugin from './plugins/schemas.ts'
import storePlugin from './plugins/store.ts'
import swaggerPlugin from './plugins/swagger.ts'
import { lazyChildLoggers, writes } from './lib/support/request-logger.ts'
import bookingRoutes from './routes/bookings.ts'
import eventManageRoutes from './routes/event-manage.ts'
import eventRoutes from './routes/events.ts'
import healthRoutes from './routes/health.ts'
import metricsRoutes from './routes/metrics.ts'

/** Largest accepted request body: a booking is ~150 bytes, an event with 100 sections ~10 KiB. */
const BODY_LIMIT = 64 * 1024

const REQUEST_ID = /^[\x21-\x7E]{1,128}$/

/** Fastify options for the app, shared by server.ts and the tests. */
export function appOptions ({ logger, ...overrides }: Omit<FastifyHttpOptions<Server>, 'logger'> & { logger?: FastifyLoggerOptions } = {}): FastifyHttpOptions<Server> {
  return {
    logger: {
      level: process.env.LOG_LEVEL ?? 'info',
      // secrets never reach the logs: credentials in headers and connection strings
      redact: ['req.headers.authorization', 'req.headers.cookie', 'config.DATABASE_URL', 'config.MONGODB_URI', 'config.REDIS_NODES', 'config.AUTH_JWT_SECRET', 'config.METRICS_TOKEN'],
      ...(process.env.LOG_PRETTY === 'true' ? { transport: { target: 'pino-pretty' } } : {}),
      ...logger
    },
    bodyLimit: BODY_LIMIT,
    // an incoming x-request-id is kept when it is a sane token, so one id follows a request across services
    requestIdHeader: false,
    genReqId: (req) => {
      const incoming = req.headers['x-request-id']
      return typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID()
    },
    // one log line per request, written in onResponse below
    logController: new LogController({ disableRequestLogging: true }),
    // each request's logger is made when it first writes (lib/support/request-logger.ts)
    childLoggerFactory: lazyChildLoggers(),
    // requests still arriving on open connections during shutdown are served, not refused
    return503OnClosing: false,
    // a too-long path parameter or a malformed URL: answered in the envelope too
    frameworkErrors,
    // a request or headers timeout (plugins/http-limits.ts) is enforced by a periodic check (Node's default: every 30 s)
    http: { connectionsCheckingInterval: 1000 },
    // what Node's parser refuses (timeouts, malformed requests) is answered in the envelope too
    clientErrorHandler,
    ...overrides
  }
}

export default async function app (fastify: FastifyInstance, opts: ConfigPluginOptions): Promise<void> {
  await fastify.register(configPlugin, opts)
  await fastify.register(httpLimitsPlugin)
  await fastify.register(metricsPlugin)
  await fastify.register(schemasPlugin)
  await fastify.register(errorsPlugin)
  await fastify.register(swaggerPlugin)
  await fastify.register(authPlugin)
  await fastify.register(redisPlugin)
  await fastify.register(rateLimitPlugin)
  await fastify.register(storePlugin)
  await fastify.register(bookingPlugin)
  await fastify.register(webhooksPlugin)

  // While shutting down, answers close their connection: the requests in flight
  // finish, then no idle keep-alive socket holds the process open.
  let closing = false
  fastify.addHook('preClose', async () => { closing = true })
  // Callback hooks, not async ones: an async onSend costs a promise and delays
  // every answer's write by a microtask (~5% of the cheapest answers).
  fastify.addHook('onSend', (request, reply, payload, done) => {
    reply.header('x-request-id', request.id)
    if (closing) reply.header('connection', 'close')
    done(null, payload)
  })
  fastify.addHook('onResponse', (request, reply, done) => {
    // the line's fields are gathered only when it is written (LOG_LEVEL info or finer)
    if (writes(request.log, 'info')) {
      request.log.info({
        method: request.method,
        route: request.routeOptions.url ?? 'unmatched',
        url: request.url,
        statusCode: reply.statusCode,
        durationMs: Math.round(reply.elapsedTime * 100) / 100
      }, 'request')
    }
    done()
  })

  // public: liveness and readiness, metrics (their own token), event availability, the docs
  await fastify.register(healthRoutes)
  await fastify.register(metricsRoutes)
  await fastify.register(eventRoutes)
  // everything else needs a principal: the hook guards the whole scope, so no
  // route registered inside it can be reached without a verified token
  await fastify.register(async (guarded) => {
    guarded.addHook('onRequest', guarded.authenticate)
    await guarded.register(eventManageRoutes)
    await guarded.register(bookingRoutes)
    await guarded.register(changeRoutes)
    await guarded.register(waitlistRoutes)
  })
}
