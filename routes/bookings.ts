import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyError } from 'fastify'
import { DomainError, RateLimitedError } from '../lib/errors.ts'
import { replyDomainError } from '../plugins/errors.ts'
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
      ...rateLimited,
      // Requests refused before the handler (rate limit, bad input, too large, bad JSON)
      // still count as booking outcomes; the handler's own outcomes are counted by the
      // booking service and answered without the error path.
      onError: async (_request, _reply, error) => {
        const status = (error as FastifyError).statusCode ?? 500
        if (error instanceof RateLimitedError) metrics.bookings.inc({ outcome: 'limit' })
        else if (status >= 400 && status < 500) metrics.bookings.inc({ outcome: 'invalid' })
      }
    }, async (request, reply) => {
      const { eventId, sectionId, qty, userId } = request.body
      const idempotencyKey = request.headers['idempotency-key']
      try {
        const result = await booking.book({ eventId, sectionId, qty, userId, idempotencyKey })
        if (result.replayed) reply.header('idempotent-replayed', 'true')
        request.log.info({ outcome: result.replayed ? 'replayed' : 'confirmed', bookingId: result.booking._id, eventId, sectionId, qty }, 'booking')
        return await reply.code(201).send({ success: true, data: result.booking })
      } catch (err) {
        if (!(err instanceof DomainError)) throw err
        request.log.info({ outcome: err.code, eventId, sectionId, qty }, 'booking refused')
        return replyDomainError(request, reply, err)
      }
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
