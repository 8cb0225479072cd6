import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { ANSWERS, PUBLIC, okAnswer } from '../lib/api/responses.ts'
import { EventIdParamsSchema, EventPageSchema, EventSchema, PageQuerySchema, ref } from '../lib/api/schemas.ts'

/** Event reads: public, no token needed (availability is what buyers look at before they sign in). */
const routes: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get('/api/events', {
    schema: {
      operationId: 'listEvents',
      tags: ['events'],
      summary: 'List events, newest first, with live remaining seats',
      description: 'Public: no token needed. `page` and `limit` may be left out (1 and 20).',
      security: PUBLIC,
      querystring: PageQuerySchema,
      response: {
        200: okAnswer(ref(EventPageSchema), 'A page of events'),
        400: ANSWERS.badInput,
        500: ANSWERS.internal,
        503: ANSWERS.storeUnavailable
      }
    }
  }, async (request) => ({ success: true as const, data: await fastify.booking.listEvents(request.query) }))

  fastify.get('/api/events/:id', {
    schema: {
      operationId: 'getEvent',
      tags: ['events'],
      summary: 'One event with live remaining seats',
      description: 'Public: no token needed.',
      security: PUBLIC,
      params: EventIdParamsSchema,
      response: {
        200: okAnswer(ref(EventSchema), 'The event'),
        400: ANSWERS.badInput,
        404: ANSWERS.notFound,
        414: ANSWERS.uriTooLong,
        500: ANSWERS.internal,
        503: ANSWERS.storeUnavailable
      }
    }
  }, async (request) => ({ success: true as const, data: await fastify.booking.getEvent(request.params.id) }))
}

export default routes
