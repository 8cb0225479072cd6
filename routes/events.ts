import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { ANSWERS, OPTIONAL_BEARER, okAnswer } from '../lib/api/responses.ts'
import { EventIdParamsSchema, EventPageSchema, EventSchema, PageQuerySchema, ref } from '../lib/api/schemas.ts'

/**
 * Event reads: public, no token needed (availability is what buyers look at
 * before they sign in). A token, when sent, is checked: its organizer also
 * sees its drafts, an admin every draft.
 */
const routes: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.addHook('onRequest', fastify.identify)

  fastify.get('/api/events', {
    schema: {
      operationId: 'listEvents',
      tags: ['events'],
      summary: 'List events, newest first, with live remaining seats and sale state',
      description: 'Public: no token needed. Drafts are listed only to their organizer and admins (a token must be sent). `page` and `limit` may be left out (1 and 20). ' +
        'To page through events created meanwhile without skipping or repeating any, send each page\'s `nextCursor` as `cursor` (not with `page`); a malformed cursor is a 400.',
      security: OPTIONAL_BEARER,
      querystring: PageQuerySchema,
      response: {
        200: okAnswer(ref(EventPageSchema), 'A page of events'),
        400: ANSWERS.badInput,
        401: ANSWERS.unauthenticated,
        500: ANSWERS.internal,
        503: ANSWERS.unavailable
      }
    }
  }, async (request) => ({ success: true as const, data: await fastify.events.list(request.principal, request.query) }))

  fastify.get('/api/events/:id', {
    schema: {
      operationId: 'getEvent',
      tags: ['events'],
      summary: 'One event with live remaining seats and sale state',
      description: 'Public: no token needed. A draft is found only by its organizer and admins (404 to anyone else).',
      security: OPTIONAL_BEARER,
      params: EventIdParamsSchema,
      response: {
        200: okAnswer(ref(EventSchema), 'The event'),
        400: ANSWERS.badInput,
        401: ANSWERS.unauthenticated,
        404: ANSWERS.notFound,
        414: ANSWERS.uriTooLong,
        500: ANSWERS.internal,
        503: ANSWERS.unavailable
      }
    }
  }, async (request) => ({ success: true as const, data: await fastify.events.get(request.principal, request.params.id) }))
}

export default routes
