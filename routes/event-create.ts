import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { BEARER_SECURITY, BODY_ERRORS, ErrorEnvelopeSchema, EventInputSchema, EventSchema, OkSchema, RetryLaterSchema, UnauthenticatedSchema } from '../lib/schemas.ts'

/** Creating an event: organizers and admins; the event belongs to the token's sub. Registered in the guarded scope. */
const routes: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.post('/api/events', {
    schema: {
      tags: ['events'],
      summary: 'Create an event with its sections (organizer, admin); each section starts with remaining = capacity',
      security: BEARER_SECURITY,
      body: EventInputSchema,
      response: {
        201: OkSchema(EventSchema),
        400: ErrorEnvelopeSchema,
        401: UnauthenticatedSchema,
        403: ErrorEnvelopeSchema,
        ...BODY_ERRORS,
        503: RetryLaterSchema
      }
    }
  }, async (request, reply) => {
    const event = await fastify.booking.createEvent(request.principal, request.body)
    request.log.info({ eventId: event._id, sections: event.sections.length }, 'event created')
    reply.code(201)
    return { success: true as const, data: event }
  })
}

export default routes
