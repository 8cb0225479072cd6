import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import {
  BEARER_SECURITY, BODY_ERRORS, BookingInputSchema, ConfirmInputSchema, BookingListQuerySchema, BookingSchema, ErrorEnvelopeSchema, IdParamsSchema,
  IdempotencyHeadersSchema, OkSchema, PageSchema, RATE_LIMIT_HEADERS, RateLimitedSchema, RetryLaterSchema, UnauthenticatedSchema
} from '../lib/schemas.ts'

/** Every answer a route with a principal can give besides its own: bad input, no valid token, store down. */
const GUARDED = { 400: ErrorEnvelopeSchema, 401: UnauthenticatedSchema, 503: RetryLaterSchema }

/** Bookings: every route needs a principal (registered in the guarded scope); what it may see and do is lib/access.ts's. */
const routes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { booking, metrics } = fastify
  // plugins/rate-limit.ts decorates rateLimit when RATE_LIMIT_MAX > 0; one handler
  // for both aliases, so they share one count per user
  const rateLimited = fastify.hasDecorator('rateLimit') ? { preHandler: fastify.rateLimit() } : {}

  // The seed served bookings at /bookings; /api/bookings is the same handler.
  for (const url of ['/bookings', '/api/bookings']) {
    fastify.post(url, {
      schema: {
        tags: ['bookings'],
        summary: 'Book or hold qty seats of one section (first come, first served)',
        description: 'A customer books as itself (userId left out, or its own sub); a service or an admin books for the userId it names. ' +
          'With "hold": true the seats are held until expiresAt (the event\'s holdSeconds, else HOLD_TTL_MS): confirm them with ' +
          'POST /api/bookings/{id}/confirm before then, or they go back on sale. 409 is SOLD_OUT (with remaining) or LIMIT_EXCEEDED ' +
          '(the event\'s maxPerUser; with allowed). ' +
          'With an Idempotency-Key header, a retry by the same principal with the same body returns the original booking ' +
          '(header Idempotent-Replayed: true); the same key with another body is refused with 422.',
        security: BEARER_SECURITY,
        headers: IdempotencyHeadersSchema,
        body: BookingInputSchema,
        response: {
          201: OkSchema(BookingSchema, {
            'idempotent-replayed': Type.Literal('true', { description: 'the original booking of this Idempotency-Key: nothing new was sold' }),
            ...RATE_LIMIT_HEADERS
          }),
          ...GUARDED,
          ...BODY_ERRORS,
          403: ErrorEnvelopeSchema,
          404: ErrorEnvelopeSchema,
          409: ErrorEnvelopeSchema,
          422: ErrorEnvelopeSchema,
          429: RateLimitedSchema
        }
      },
      // every answer, refusals included, counted once by its outcome
      onResponse: async (request) => { metrics.bookings.inc({ outcome: request.outcome ?? 'error' }) },
      ...rateLimited
    }, async (request, reply) => {
      const { eventId, sectionId, qty, userId, hold } = request.body
      const result = await booking.book(request.principal, { eventId, sectionId, qty, userId, hold, idempotencyKey: request.headers['idempotency-key'] })
      request.outcome = result.replayed ? 'replayed' : result.booking.status === 'held' ? 'held' : 'confirmed'
      if (result.replayed) reply.header('idempotent-replayed', 'true')
      request.log.info({ outcome: request.outcome, bookingId: result.booking._id, eventId, sectionId, qty }, 'booking')
      reply.code(201)
      return { success: true as const, data: result.booking }
    })

    fastify.get(url, {
      schema: {
        tags: ['bookings'],
        summary: 'List bookings, newest first, filtered by eventId, sectionId, userId, status',
        description: 'A customer sees its own bookings, an organizer those of its events, a service or an admin all.',
        security: BEARER_SECURITY,
        querystring: BookingListQuerySchema,
        response: { 200: OkSchema(PageSchema(BookingSchema)), ...GUARDED }
      }
    }, async (request) => ({ success: true as const, data: await booking.listBookings(request.principal, request.query) }))
  }

  fastify.get('/api/bookings/:id', {
    schema: {
      tags: ['bookings'],
      summary: 'One booking: its owner, its event\'s organizer, a service or an admin sees it; to anyone else it is 404',
      security: BEARER_SECURITY,
      params: IdParamsSchema,
      response: { 200: OkSchema(BookingSchema), ...GUARDED, 404: ErrorEnvelopeSchema }
    }
  }, async (request) => ({ success: true as const, data: await booking.getBooking(request.principal, request.params.id) }))

  fastify.post('/api/bookings/:id/confirm', {
    schema: {
      tags: ['bookings'],
      summary: 'Confirm a hold (its owner, a service, an admin), with the payment\'s reference',
      description: 'A held booking becomes confirmed. The same paymentRef again answers the same (a payment provider\'s webhook retries); ' +
        'another paymentRef on a confirmed booking, or a cancelled booking, is 409 INVALID_STATE. Past its expiresAt the hold is expired, ' +
        'decided by the database\'s clock: 410 HOLD_EXPIRED, and its seats are back on sale.',
      security: BEARER_SECURITY,
      params: IdParamsSchema,
      body: ConfirmInputSchema,
      response: {
        200: OkSchema(BookingSchema),
        ...GUARDED,
        ...BODY_ERRORS,
        403: ErrorEnvelopeSchema,
        404: ErrorEnvelopeSchema,
        409: ErrorEnvelopeSchema,
        410: ErrorEnvelopeSchema
      }
    },
    // the body is optional: a confirm without a payment reference may send none
    preValidation: async (request) => { request.body ??= {} }
  }, async (request) => {
    const confirmed = await booking.confirm(request.principal, request.params.id, request.body.paymentRef)
    request.log.info({ outcome: 'confirmed', bookingId: confirmed._id, eventId: confirmed.eventId, sectionId: confirmed.sectionId }, 'hold confirmed')
    return { success: true as const, data: confirmed }
  })

  fastify.post('/api/bookings/:id/cancel', {
    schema: {
      tags: ['bookings'],
      summary: 'Cancel a booking (its owner, its event\'s organizer, a service, an admin): a hold is released, a confirmed booking cancelled, ' +
        'the seats go back at once. Cancelling again, or an expired hold, changes nothing.',
      security: BEARER_SECURITY,
      params: IdParamsSchema,
      response: { 200: OkSchema(BookingSchema), ...GUARDED, ...BODY_ERRORS, 404: ErrorEnvelopeSchema }
    }
  }, async (request) => {
    const cancelled = await booking.cancel(request.principal, request.params.id)
    request.log.info({ outcome: 'cancelled', bookingId: cancelled._id, eventId: cancelled.eventId, sectionId: cancelled.sectionId }, 'booking cancelled')
    return { success: true as const, data: cancelled }
  })
}

export default routes
