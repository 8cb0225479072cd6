import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { ANSWERS, BEARER_SECURITY, BODY_ANSWERS, GUARDED_ANSWERS, errorAnswer, okAnswer } from '../lib/api/responses.ts'
import { EventIdParamsSchema, ref } from '../lib/api/schemas.ts'
import { WaitEntryParamsSchema, WaitEntrySchema, WaitlistJoinSchema, WaitlistPageSchema, WaitlistQuerySchema } from '../lib/api/waitlist-schemas.ts'

const HOW = 'Seats that come back to the section (a cancellation, a released or expired hold, a capacity raised) go to its list first, in ' +
  'position order: the first waiting entries whose qty fits become offers, each a hold for its user (`bookingId`, until the event\'s ' +
  'waitlistOfferSeconds, else WAITLIST_OFFER_SECONDS), recorded as a `waitlist.offered` change for webhooks. Confirm it as any hold ' +
  '(POST /api/bookings/{id}/confirm); an offer that lapses or is released goes to the next in line. While an entry that fits waits, no ' +
  'public booking takes those seats. An offer that would pass the event\'s maxPerUser is not made: the entry is `skipped`.'

/** The waiting list: every route needs a principal (registered in the guarded scope); who may do what is lib/domain/access.ts's. */
const routes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { waitlist } = fastify

  fastify.post('/api/events/:id/waitlist', {
    schema: {
      operationId: 'joinWaitlist',
      tags: ['waitlist'],
      summary: 'Wait for seats of a section that cannot serve qty now',
      description: 'A customer waits as itself (userId left out, or its own sub); a service or an admin for the userId it names. Only when ' +
        'the section cannot serve qty once the request is decided (else 409 SEATS_AVAILABLE: book instead), and only while the sale is on. ' +
        'The same user on the same section again, while its entry waits or is offered, answers that entry (200), never a second one. ' + HOW,
      security: BEARER_SECURITY,
      params: EventIdParamsSchema,
      body: ref(WaitlistJoinSchema),
      response: {
        200: okAnswer(ref(WaitEntrySchema), 'The user\'s entry already on this section\'s list (waiting or offered)'),
        201: okAnswer(ref(WaitEntrySchema), 'Joined: the entry, `waiting`, with its `position`'),
        ...BODY_ANSWERS,
        ...GUARDED_ANSWERS,
        403: ANSWERS.forbidden,
        404: ANSWERS.notFound,
        409: errorAnswer(['SEATS_AVAILABLE', 'LIMIT_EXCEEDED', 'SALE_NOT_OPEN', 'SALE_CLOSED']),
        414: ANSWERS.uriTooLong,
        503: ANSWERS.busy
      }
    }
  }, async (request, reply) => {
    const { entry, created } = await waitlist.join(request.principal, request.params.id, request.body)
    request.log.info({ entryId: entry._id, eventId: entry.eventId, sectionId: entry.sectionId, qty: entry.qty, created }, 'waitlist joined')
    reply.code(created ? 201 : 200)
    return { success: true as const, data: entry }
  })

  fastify.get('/api/events/:id/waitlist', {
    schema: {
      operationId: 'listWaitlist',
      tags: ['waitlist'],
      summary: 'An event\'s waiting lists, by section and position',
      description: 'The event\'s organizer, services and admins see every entry; anyone else its own. Served entries stay listed. ' + HOW,
      security: BEARER_SECURITY,
      params: EventIdParamsSchema,
      querystring: WaitlistQuerySchema,
      response: {
        200: okAnswer(ref(WaitlistPageSchema), 'A page of entries'),
        400: ANSWERS.badInput,
        ...GUARDED_ANSWERS,
        404: ANSWERS.notFound,
        414: ANSWERS.uriTooLong,
        503: ANSWERS.unavailable
      }
    }
  }, async (request) => ({ success: true as const, data: await waitlist.list(request.principal, request.params.id, request.query) }))

  fastify.delete('/api/waitlist/:id', {
    schema: {
      operationId: 'leaveWaitlist',
      tags: ['waitlist'],
      summary: 'Leave a waiting list (an offered entry declines its offer)',
      description: 'Its user, its event\'s organizer, a service or an admin; to anyone else it is 404. A waiting entry leaves; an offered one ' +
        'declines: its hold is released and its seats go to the next in line. An entry already served or gone is answered as it is.',
      security: BEARER_SECURITY,
      params: WaitEntryParamsSchema,
      response: {
        200: okAnswer(ref(WaitEntrySchema), 'The entry, `left` (or as it was, when it had been served or had left)'),
        400: ANSWERS.badInput,
        ...GUARDED_ANSWERS,
        404: ANSWERS.notFound,
        414: ANSWERS.uriTooLong,
        503: ANSWERS.busy
      }
    }
  }, async (request) => {
    const entry = await waitlist.leave(request.principal, request.params.id)
    request.log.info({ entryId: entry._id, status: entry.status }, 'waitlist left')
    return { success: true as const, data: entry }
  })
}

export default routes
