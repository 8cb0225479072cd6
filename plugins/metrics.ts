import fp from 'fastify-plugin'
import { Counter, Histogram, Registry } from 'prom-client'
import { createMetrics, type BookingOutcome, type Metrics } from '../lib/support/metrics.ts'

declare module 'fastify' {
  interface FastifyInstance {
    metrics: Metrics
  }
  interface FastifyRequest {
    /** how a booking request was answered, counted by the booking routes; set by the handler or the error handler */
    outcome: BookingOutcome | null
  }
}

/**
 * A Registry of this app's own (never the global one), the domain metrics on
 * it, and the HTTP duration histogram of every answer.
 */
export default fp(async (fastify) => {
  const metrics = createMetrics(new Registry())
  const httpDuration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request duration in seconds, by method, route pattern and status code',
    labelNames: ['method', 'route', 'status_code'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [metrics.register]
  })
  // the server's 'drop': a connection closed on accept because MAX_CONNECTIONS were open (plugins/http-limits.ts)
  const droppedConnections = new Counter({
    name: 'http_connections_dropped_total',
    help: 'Connections closed as soon as they were accepted, because MAX_CONNECTIONS were open',
    registers: [metrics.register]
  })
  fastify.server.on('drop', () => droppedConnections.inc())
  fastify.decorate('metrics', metrics)
  fastify.decorateRequest('outcome', null)
  // a callback hook, as every per-request hook of the app: an async one costs a promise per answer
  fastify.addHook('onResponse', (request, reply, done) => {
    httpDuration.observe({
      method: request.method,
      // the route pattern, never the raw URL: label values stay a closed set
      route: request.routeOptions.url ?? 'unmatched',
      status_code: String(reply.statusCode)
    }, reply.elapsedTime / 1000)
    done()
  })
}, { name: 'metrics' })
