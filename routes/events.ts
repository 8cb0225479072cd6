import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import {
  ErrorEnvelopeSchema, EventInputSchema, EventSchema, IdParamsSchema, OkSchema, PageQuerySchema, PageSchema
} from '../lib/schemas.ts'

const routes: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.post('/api/events', {
    schema: {
      tags: ['events'],
      summary: 'Create an event with its sections; each section starts with remaining = capacity',
      body: EventInputSchema,
      response: { 201: OkSchema(EventSchema), 400: ErrorEnvelopeSchema, 503: ErrorEnvelopeSchema }
    }
  }, async (request, reply) => {
    const event = await fastify.booking.createEvent(request.body)
    request.log.info({ eventId: event._id, sections: event.sections.length }, 'event created')
    reply.code(201)
    return { success: true as const, data: event }
  })

  fastify.get('/api/events', {
    schema: {
      tags: ['events'],
      summary: 'List events, newest first, with live remaining seats',
      querystring: PageQuerySchema,
      response: { 200: OkSchema(PageSchema(EventSchema)), 400: ErrorEnvelopeSchema, 503: ErrorEnvelopeSchema }
    }
  }, async (request) => ({ success: true as const, data: await fastify.booking.listEvents(request.query) }))

  fastify.get('/api/events/:id', {
    schema: {
      tags: ['events'],
      summary: 'One event with live remaining seats',
      params: IdParamsSchema,
      response: { 200: OkSchema(EventSchema), 400: ErrorEnvelopeSchema, 404: ErrorEnvelopeSchema, 503: ErrorEnvelopeSchema }
    }
  }, async (request) => ({ success: true as const, data: await fastify.booking.getEvent(request.params.id) }))
}

export default routes
