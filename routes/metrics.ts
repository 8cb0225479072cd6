import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { ANSWERS } from '../lib/api/responses.ts'

const routes: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get('/metrics', {
    schema: {
      operationId: 'metrics',
      tags: ['ops'],
      summary: 'Prometheus metrics in the text exposition format',
      description: 'With METRICS_TOKEN set, it needs `Authorization: Bearer <METRICS_TOKEN>`; without, it is open (the security requirement lists both).',
      security: [{ metricsToken: [] }, {}],
      response: {
        200: { description: 'The exposition (docs/metrics.md lists the metrics)', content: { 'text/plain': { schema: Type.String({ example: 'bookings_total{outcome="confirmed"} 42' }) } } },
        401: ANSWERS.unauthenticated,
        500: ANSWERS.internal
      }
    },
    onRequest: fastify.authenticateScraper
  }, async (_request, reply) => {
    const { register } = fastify.metrics
    reply.header('content-type', register.contentType)
    return await register.metrics()
  })
}

export default routes
