import fp from 'fastify-plugin'
import { Registry } from 'prom-client'
import { createMetrics, type Metrics } from '../lib/metrics.ts'

declare module 'fastify' {
  interface FastifyInstance {
    metrics: Metrics
  }
}

/** A Registry of this app's own (never the global one) and the HTTP duration histogram. */
export default fp(async (fastify) => {
  const metrics = createMetrics(new Registry())
  fastify.decorate('metrics', metrics)
  fastify.addHook('onResponse', async (request, reply) => {
    metrics.httpDuration.observe({
      method: request.method,
      // the route pattern, never the raw URL: label values stay a closed set
      route: request.routeOptions.url ?? 'unmatched',
      status_code: String(reply.statusCode)
    }, reply.elapsedTime / 1000)
  })
}, { name: 'metrics' })
