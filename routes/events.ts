import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { ErrorEnvelopeSchema, EventSchema, IdParamsSchema, OkSchema, PageQuerySchema, PageSchema, RetryLaterSchema } from '../lib/schemas.ts'

/** Event reads: public, no token needed (availability is what buyers look at before they sign in). */
const routes: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get('/api/events', {
    schema: {
      tags: ['events'],
      summary: 'List events, newest first, with live remaining seats',
      querystring: PageQuerySchema,
      response: { 200: OkSchema(PageSchema(EventSchema)), 400: ErrorEnvelopeSchema, 503: RetryLaterSchema }
    }
  }, async (request) => ({ success: true as const, data: await fastify.booking.listEvents(request.query) }))

  fastify.get('/api/events/:id', {
    schema: {
      tags: ['events'],
      summary: 'One event with live remaining seats',
      params: IdParamsSchema,
      response: { 200: OkSchema(EventSchema), 400: ErrorEnvelopeSchema, 404: ErrorEnvelopeSchema, 503: RetryLaterSchema }
    }
  }, async (request) => ({ success: true as const, data: await fastify.booking.getEvent(request.params.id) }))
}

export default routes
