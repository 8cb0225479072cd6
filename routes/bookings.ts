import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import {
  BookingInputSchema, BookingListQuerySchema, BookingSchema, ErrorEnvelopeSchema, IdParamsSchema,
  IdempotencyHeadersSchema, OkSchema, PageSchema
} from '../lib/schemas.ts'

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
        summary: 'Book qty seats of one section (first come, first served)',
        description: 'With an Idempotency-Key header, a retry with the same body returns the original booking ' +
          '(header Idempotent-Replayed: true); the same key with another body is refused with 422.',
        headers: IdempotencyHeadersSchema,
        body: BookingInputSchema,
        response: {
          201: OkSchema(BookingSchema),
          400: ErrorEnvelopeSchema,
          404: ErrorEnvelopeSchema,
          409: ErrorEnvelopeSchema,
          422: ErrorEnvelopeSchema,
          503: ErrorEnvelopeSchema
        }
      },
      // every answer, refusals included, counted once by its outcome
      onResponse: async (request) => { metrics.bookings.inc({ outcome: request.outcome ?? 'error' }) },
      ...rateLimited
    }, async (request, reply) => {
      const { eventId, sectionId, qty, userId } = request.body
      const result = await booking.book({ eventId, sectionId, qty, userId, idempotencyKey: request.headers['idempotency-key'] })
      request.outcome = result.replayed ? 'replayed' : 'confirmed'
      if (result.replayed) reply.header('idempotent-replayed', 'true')
      request.log.info({ outcome: request.outcome, bookingId: result.booking._id, eventId, sectionId, qty }, 'booking')
      reply.code(201)
      return { success: true as const, data: result.booking }
    })

    fastify.get(url, {
      schema: {
        tags: ['bookings'],
        summary: 'List bookings, newest first, filtered by eventId, sectionId, userId, status',
        querystring: BookingListQuerySchema,
        response: { 200: OkSchema(PageSchema(BookingSchema)), 400: ErrorEnvelopeSchema, 503: ErrorEnvelopeSchema }
      }
    }, async (request) => ({ success: true as const, data: await booking.listBookings(request.query) }))
  }

  fastify.get('/api/bookings/:id', {
    schema: {
      tags: ['bookings'],
      summary: 'One booking',
      params: IdParamsSchema,
      response: { 200: OkSchema(BookingSchema), 400: ErrorEnvelopeSchema, 404: ErrorEnvelopeSchema, 503: ErrorEnvelopeSchema }
    }
  }, async (request) => ({ success: true as const, data: await booking.getBooking(request.params.id) }))

  fastify.post('/api/bookings/:id/cancel', {
    schema: {
      tags: ['bookings'],
      summary: 'Cancel a booking: its seats go back to the section. Cancelling again changes nothing.',
      params: IdParamsSchema,
      response: { 200: OkSchema(BookingSchema), 400: ErrorEnvelopeSchema, 404: ErrorEnvelopeSchema, 503: ErrorEnvelopeSchema }
    }
  }, async (request) => {
    const cancelled = await booking.cancel(request.params.id)
    request.log.info({ outcome: 'cancelled', bookingId: cancelled._id, eventId: cancelled.eventId, sectionId: cancelled.sectionId }, 'booking cancelled')
    return { success: true as const, data: cancelled }
  })
}

export default routes
