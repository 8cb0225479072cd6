import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'

const routes: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get('/metrics', {
    schema: {
      tags: ['ops'],
      summary: 'Prometheus metrics in the text exposition format',
      response: { 200: { content: { 'text/plain': { schema: Type.String() } } } }
    }
  }, async (_request, reply) => {
    const { register } = fastify.metrics
    reply.header('content-type', register.contentType)
    return await register.metrics()
  })
}

export default routes
