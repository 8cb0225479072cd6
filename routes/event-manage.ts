import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { ANSWERS, BEARER_SECURITY, BODY_ANSWERS, GUARDED_ANSWERS, errorAnswer, locationHeader, okAnswer } from '../lib/api/responses.ts'
import {
  EXAMPLE_IDS, EventIdParamsSchema, EventInputSchema, EventPatchSchema, EventSchema, SectionInputSchema, SectionParamsSchema, SectionPatchSchema,
  SectionSchema, ref
} from '../lib/api/schemas.ts'
import type { StatusMove } from '../lib/domain/sale-rules.ts'

/** What every change of an existing event may answer besides its own. */
const CHANGE_ANSWERS = {
  ...GUARDED_ANSWERS,
  403: ANSWERS.forbidden,
  404: ANSWERS.notFound,
  414: ANSWERS.uriTooLong,
  503: ANSWERS.busy
}

const MOVES: Record<StatusMove, { summary: string, description: string }> = {
  publish: { summary: 'Publish an event (draft or closed -> published)', description: 'It is seen by everyone and takes bookings within its sale window. Publishing a published event changes nothing.' },
  close: { summary: 'Close an event\'s sale (-> closed)', description: 'No more bookings or holds (409 SALE_CLOSED); holds taken may still be confirmed until their expiresAt. Closing a closed event changes nothing.' },
  cancel: { summary: 'Cancel an event (-> cancelled)', description: 'No more bookings; every hold is released (its seats go back); confirmed bookings stay as they are. Cancelling a cancelled event changes nothing; a cancelled event cannot be published again.' }
}

/** Creating and changing events: the event's organizer (its token's sub) and admins. Registered in the guarded scope. */
const routes: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.post('/api/events', {
    schema: {
      operationId: 'createEvent',
      tags: ['events'],
      summary: 'Create an event with its sections (organizer, admin)',
      description: 'Each section starts with remaining = capacity. The event belongs to the token\'s `sub`: its organizer sees its bookings and changes it. Published at once unless `"status": "draft"`; on sale at once unless `salesStart` says when.',
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
    const event = await fastify.events.create(request.principal, request.body)
    request.log.info({ eventId: event._id, sections: event.sections.length, status: event.status }, 'event created')
    reply.code(201).header('location', `/api/events/${event._id}`)
    return { success: true as const, data: event }
  })

  fastify.patch('/api/events/:id', {
    schema: {
      operationId: 'updateEvent',
      tags: ['events'],
      summary: 'Change an event\'s details, sale window or rules (its organizer, admin)',
      description: 'Any field of the event but its sections and status; `null` clears one. The sale window applies at once on every instance. endsAt must be after startsAt, salesEnd after salesStart (400 naming the field).',
      security: BEARER_SECURITY,
      params: EventIdParamsSchema,
      body: ref(EventPatchSchema),
      response: { 200: okAnswer(ref(EventSchema), 'The event as changed'), ...BODY_ANSWERS, ...CHANGE_ANSWERS }
    }
  }, async (request) => {
    const event = await fastify.events.update(request.principal, request.params.id, request.body)
    request.log.info({ eventId: event._id, fields: Object.keys(request.body) }, 'event changed')
    return { success: true as const, data: event }
  })

  for (const move of Object.keys(MOVES) as StatusMove[]) {
    fastify.post(`/api/events/:id/${move}`, {
      schema: {
        operationId: `${move}Event`,
        tags: ['events'],
        ...MOVES[move],
        description: `${MOVES[move].description} No body is needed (an empty JSON one is accepted).`,
        security: BEARER_SECURITY,
        params: EventIdParamsSchema,
        response: {
          200: okAnswer(ref(EventSchema), 'The event with its new status'),
          409: errorAnswer(['INVALID_STATE']),
          ...BODY_ANSWERS,
          ...CHANGE_ANSWERS
        }
      }
    }, async (request) => {
      const event = await fastify.events.move(request.principal, request.params.id, move)
      request.log.info({ eventId: event._id, status: event.status }, `event ${move}`)
      return { success: true as const, data: event }
    })
  }

  fastify.post('/api/events/:id/sections', {
    schema: {
      operationId: 'addSection',
      tags: ['events'],
      summary: 'Add a section to an event (its organizer, admin)',
      description: 'The section is on sale at once, with the event\'s sale window and rules.',
      security: BEARER_SECURITY,
      params: EventIdParamsSchema,
      body: ref(SectionInputSchema),
      response: {
        201: okAnswer(ref(SectionSchema), 'Added: the section with its `_id`', locationHeader(`/api/events/${EXAMPLE_IDS.event}`)),
        ...BODY_ANSWERS,
        ...CHANGE_ANSWERS
      }
    }
  }, async (request, reply) => {
    const section = await fastify.events.addSection(request.principal, request.params.id, request.body)
    request.log.info({ eventId: request.params.id, sectionId: section._id }, 'section added')
    reply.code(201).header('location', `/api/events/${request.params.id}`)
    return { success: true as const, data: section }
  })

  fastify.patch('/api/events/:id/sections/:sectionId', {
    schema: {
      operationId: 'updateSection',
      tags: ['events'],
      summary: 'Change a section\'s name, price or capacity (its organizer, admin)',
      description: 'Decided in the section\'s batch, between bookings. A new price applies to bookings made from now on (a booking keeps its unitPrice). Capacity raised: the new seats are on sale at once on every instance; lowered: never below the seats held plus sold (409 CAPACITY_BELOW_TAKEN with `minimum`).',
      security: BEARER_SECURITY,
      params: SectionParamsSchema,
      body: ref(SectionPatchSchema),
      response: {
        200: okAnswer(ref(SectionSchema), 'The section as changed, with its live availability'),
        409: errorAnswer(['CAPACITY_BELOW_TAKEN']),
        ...BODY_ANSWERS,
        ...CHANGE_ANSWERS
      }
    }
  }, async (request) => {
    const { id, sectionId } = request.params
    const section = await fastify.events.editSection(request.principal, id, sectionId, request.body)
    request.log.info({ eventId: id, sectionId, fields: Object.keys(request.body) }, 'section changed')
    return { success: true as const, data: section }
  })
}

export default routes
