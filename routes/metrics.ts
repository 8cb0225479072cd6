import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { UnauthenticatedSchema } from '../lib/schemas.ts'

const routes: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get('/metrics', {
    schema: {
      tags: ['ops'],
      summary: 'Prometheus metrics in the text exposition format (bearer METRICS_TOKEN when the service sets one)',
      security: [{ metricsToken: [] }],
      response: { 200: { content: { 'text/plain': { schema: Type.String() } } }, 401: UnauthenticatedSchema }
    },
    onRequest: fastify.authenticateScraper
  }, async (_request, reply) => {
    const { register } = fastify.metrics
    reply.header('content-type', register.contentType)
    return await register.metrics()
  })
}

export default routes
