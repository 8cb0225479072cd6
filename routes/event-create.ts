import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { ANSWERS, BEARER_SECURITY, BODY_ANSWERS, GUARDED_ANSWERS, locationHeader, okAnswer } from '../lib/api/responses.ts'
import { EXAMPLE_IDS, EventInputSchema, EventSchema, ref } from '../lib/api/schemas.ts'

/** Creating an event: organizers and admins; the event belongs to the token's sub. Registered in the guarded scope. */
const routes: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.post('/api/events', {
    schema: {
      operationId: 'createEvent',
      tags: ['events'],
      summary: 'Create an event with its sections (organizer, admin)',
      description: 'Each section starts with remaining = capacity. The event belongs to the token\'s `sub`: its organizer sees its bookings.',
      security: BEARER_SECURITY,
      body: ref(EventInputSchema),
      response: {
        201: okAnswer(ref(EventSchema), 'Created: the event, each section with its `_id`', locationHeader(`/api/events/${EXAMPLE_IDS.event}`)),
        ...BODY_ANSWERS,
        ...GUARDED_ANSWERS,
        403: ANSWERS.forbidden,
        503: ANSWERS.unavailable
      }
    }
  }, async (request, reply) => {
    const event = await fastify.booking.createEvent(request.principal, request.body)
    request.log.info({ eventId: event._id, sections: event.sections.length }, 'event created')
    reply.code(201).header('location', `/api/events/${event._id}`)
    return { success: true as const, data: event }
  })
}

export default routes
