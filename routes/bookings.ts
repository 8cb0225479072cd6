import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import {
  ANSWERS, BEARER_SECURITY, BODY_ANSWERS, GUARDED_ANSWERS, IDEMPOTENT_REPLAYED_HEADER, OPTIONAL_BODY, RATE_LIMIT_HEADERS, errorAnswer, locationHeader, okAnswer
} from '../lib/api/responses.ts'
import {
  BookingIdParamsSchema, BookingInputSchema, BookingListQuerySchema, BookingPageSchema, BookingSchema, ConfirmInputSchema, EXAMPLE_IDS,
  IdempotencyHeadersSchema, ref
} from '../lib/api/schemas.ts'
import { writes } from '../lib/support/request-logger.ts'

const BOOK_DESCRIPTION = 'A customer books as itself (userId left out, or its own sub); a service or an admin books for the userId it names. ' +
  'With "hold": true the seats are held until expiresAt (the event\'s holdSeconds, else HOLD_TTL_MS): confirm them with ' +
  'POST /api/bookings/{id}/confirm before then, or they go back on sale. ' +
  'With an Idempotency-Key header, a retry by the same principal with the same body answers 201 with the original booking ' +
  '(header Idempotent-Replayed: true); the same key with another body is refused with 422. ' +
  'With RATE_LIMIT_MAX set, each principal has that many booking requests per window (both paths count alike).'

/** Bookings: every route needs a principal (registered in the guarded scope); what it may see and do is lib/domain/access.ts's. */
const routes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { booking, metrics } = fastify
  // plugins/rate-limit.ts decorates rateLimit when RATE_LIMIT_MAX > 0; one handler
  // for both aliases, so they share one count per user
  const rateLimited = fastify.hasDecorator('rateLimit') ? { preHandler: fastify.rateLimit() } : {}

  // /api/bookings, and /bookings where the seed served them: the same handlers, one operationId each
  for (const [url, alias] of [['/api/bookings', false], ['/bookings', true]] as const) {
    const aliasNote = alias ? ' Same as at /api/bookings: this is the path of the original seed, kept for its clients.' : ''
    fastify.post(url, {
      schema: {
        operationId: alias ? 'createBookingAlias' : 'createBooking',
        tags: ['bookings'],
        summary: 'Book or hold qty seats of one section (first come, first served)',
        description: BOOK_DESCRIPTION + aliasNote,
        security: BEARER_SECURITY,
        headers: IdempotencyHeadersSchema,
        body: ref(BookingInputSchema),
        response: {
          201: okAnswer(ref(BookingSchema), 'Created: a `confirmed` booking, or `held` with its `expiresAt`; or the original booking of a retried Idempotency-Key',
            { ...locationHeader(`/api/bookings/${EXAMPLE_IDS.booking}`), ...IDEMPOTENT_REPLAYED_HEADER, ...RATE_LIMIT_HEADERS }),
          ...BODY_ANSWERS,
          ...GUARDED_ANSWERS,
          403: ANSWERS.forbidden,
          404: ANSWERS.notFound,
          409: errorAnswer(['SOLD_OUT', 'LIMIT_EXCEEDED', 'SALE_NOT_OPEN', 'SALE_CLOSED']),
          422: errorAnswer(['IDEMPOTENCY_KEY_REUSED']),
          429: ANSWERS.rateLimited,
          503: ANSWERS.busy
        }
      },
      // every answer, refusals included, counted once by its outcome (a callback hook: no promise per answer)
      onResponse: (request, _reply, done) => { metrics.bookings.inc({ outcome: request.outcome ?? 'error' }); done() },
      ...rateLimited
    }, (request, reply) => {
      const { eventId, sectionId, qty, userId, hold } = request.body
      // not an async function: a refusal (the sold-out storm's 409) passes to the error handler as
      // a rejection, without an exception unwinding the handler (~7% of a sold-out answer)
      return booking.book(request.principal, { eventId, sectionId, qty, userId, hold, idempotencyKey: request.headers['idempotency-key'] }).then(result => {
        request.outcome = result.replayed ? 'replayed' : result.booking.status === 'held' ? 'held' : 'confirmed'
        if (result.replayed) reply.header('idempotent-replayed', 'true')
        if (writes(request.log, 'info')) request.log.info({ outcome: request.outcome, bookingId: result.booking._id, eventId, sectionId, qty }, 'booking')
        reply.code(201).header('location', `/api/bookings/${result.booking._id}`)
        return { success: true as const, data: result.booking }
      })
    })

    fastify.get(url, {
      schema: {
        operationId: alias ? 'listBookingsAlias' : 'listBookings',
        tags: ['bookings'],
        summary: 'List bookings, newest first, filtered by eventId, sectionId, userId, status',
        description: 'A customer sees its own bookings, an organizer those of its events, a service or an admin all. ' +
          'Every filter, `page` and `limit` may be left out (1 and 20). To page through bookings made meanwhile without skipping or repeating any, ' +
          'send each page\'s `nextCursor` as `cursor` with the same filters (not with `page`); a malformed cursor is a 400.' + aliasNote,
        security: BEARER_SECURITY,
        querystring: BookingListQuerySchema,
        response: {
          200: okAnswer(ref(BookingPageSchema), 'A page of the bookings the principal may see'),
          400: ANSWERS.badInput,
          ...GUARDED_ANSWERS,
          403: ANSWERS.forbidden,
          503: ANSWERS.unavailable
        }
      }
    }, async (request) => ({ success: true as const, data: await booking.listBookings(request.principal, request.query) }))
  }

  fastify.get('/api/bookings/:id', {
    schema: {
      operationId: 'getBooking',
      tags: ['bookings'],
      summary: 'One booking',
      description: 'Its owner, its event\'s organizer, a service or an admin sees it; to anyone else it is 404.',
      security: BEARER_SECURITY,
      params: BookingIdParamsSchema,
      response: {
        200: okAnswer(ref(BookingSchema), 'The booking'),
        400: ANSWERS.badInput,
        ...GUARDED_ANSWERS,
        404: ANSWERS.notFound,
        414: ANSWERS.uriTooLong,
        503: ANSWERS.unavailable
      }
    }
  }, async (request) => ({ success: true as const, data: await booking.getBooking(request.principal, request.params.id) }))

  fastify.post('/api/bookings/:id/confirm', {
    schema: {
      operationId: 'confirmBooking',
      tags: ['bookings'],
      summary: 'Confirm a hold, with the payment\'s reference (its owner, a service, an admin)',
      description: 'A held booking becomes confirmed. The same paymentRef again answers the same (a payment provider\'s webhook retries); ' +
        'another paymentRef on a confirmed booking, or a cancelled booking, is 409 INVALID_STATE. Past its expiresAt the hold is expired, ' +
        'decided by the database\'s clock: 410 HOLD_EXPIRED, and its seats are back on sale. The body may be left out.',
      security: BEARER_SECURITY,
      params: BookingIdParamsSchema,
      body: ref(ConfirmInputSchema),
      [OPTIONAL_BODY]: true,
      response: {
        200: okAnswer(ref(BookingSchema), 'The confirmed booking'),
        ...BODY_ANSWERS,
        ...GUARDED_ANSWERS,
        403: ANSWERS.forbidden,
        404: ANSWERS.notFound,
        409: errorAnswer(['INVALID_STATE']),
        410: errorAnswer(['HOLD_EXPIRED']),
        414: ANSWERS.uriTooLong,
        503: ANSWERS.busy
      }
    },
    // the body is optional: a confirm without a payment reference may send none (a JSON null is still refused)
    preValidation: async (request) => { if (request.body === undefined) request.body = {} }
  }, async (request) => {
    const confirmed = await booking.confirm(request.principal, request.params.id, request.body.paymentRef)
    request.log.info({ outcome: 'confirmed', bookingId: confirmed._id, eventId: confirmed.eventId, sectionId: confirmed.sectionId }, 'hold confirmed')
    return { success: true as const, data: confirmed }
  })

  fastify.post('/api/bookings/:id/cancel', {
    schema: {
      operationId: 'cancelBooking',
      tags: ['bookings'],
      summary: 'Cancel a booking (its owner, its event\'s organizer, a service, an admin)',
      description: 'A hold is released, a confirmed booking cancelled, the seats go back at once. ' +
        'Cancelling again, or an expired hold, answers the booking unchanged. No body is needed (an empty JSON one is accepted).',
      security: BEARER_SECURITY,
      params: BookingIdParamsSchema,
      response: {
        200: okAnswer(ref(BookingSchema), 'The booking, cancelled (or as it was when there was nothing to cancel)'),
        ...BODY_ANSWERS,
        ...GUARDED_ANSWERS,
        404: ANSWERS.notFound,
        414: ANSWERS.uriTooLong,
        503: ANSWERS.busy
      }
    }
  }, async (request) => {
    const cancelled = await booking.cancel(request.principal, request.params.id)
    request.log.info({ outcome: 'cancelled', bookingId: cancelled._id, eventId: cancelled.eventId, sectionId: cancelled.sectionId }, 'booking cancelled')
    return { success: true as const, data: cancelled }
  })
}

export default routes
