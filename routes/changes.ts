import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { ANSWERS, BEARER_SECURITY, BODY_ANSWERS, GUARDED_ANSWERS, locationHeader, okAnswer } from '../lib/api/responses.ts'
import {
  ChangePageSchema, ChangeQuerySchema, WebhookCreatedSchema, WebhookIdParamsSchema, WebhookInputSchema, WebhookSchema
} from '../lib/api/change-schemas.ts'
import { ref } from '../lib/api/schemas.ts'
import { Type } from '@sinclair/typebox'

const DELIVERY = 'Deliveries follow Standard Webhooks 1.0: a POST of the change as JSON (as the feed answers it) with `webhook-id` (the change\'s id, ' +
  'the same on every try), `webhook-timestamp` and `webhook-signature` (`v1,<base64 HMAC-SHA256>` with the endpoint\'s secret). At least once, ' +
  'in feed order per endpoint; a 2xx within WEBHOOK_TIMEOUT_MS is delivered, anything else is tried again with exponential backoff and jitter ' +
  '(WEBHOOK_RETRY_BASE_MS up to WEBHOOK_RETRY_MAX_MS), a change given up WEBHOOK_RETRY_HOURS after its first failure. A 410 Gone, or ' +
  'WEBHOOK_DISABLE_AFTER failures in a row, disables the endpoint. Redirects are not followed.'

/** The change feed and webhook endpoints: every route needs a principal (registered in the guarded scope). */
const routes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { changes } = fastify

  fastify.get('/api/changes', {
    schema: {
      operationId: 'listChanges',
      tags: ['changes'],
      summary: 'Changes of bookings, events and sections, in order, resumable by cursor',
      description: 'Services and admins read every event\'s changes, an organizer its own events\'. Without `after`, from the oldest kept ' +
        '(CHANGES_RETENTION_HOURS); send each answer\'s `nextCursor` as `after` to read on: no change is skipped, even one whose transaction ' +
        'committed after a later-numbered one\'s, and none is read twice. `types` filters, comma-separated.',
      security: BEARER_SECURITY,
      querystring: ChangeQuerySchema,
      response: {
        200: okAnswer(ref(ChangePageSchema), 'A page of changes, oldest first'),
        400: ANSWERS.badInput,
        ...GUARDED_ANSWERS,
        403: ANSWERS.forbidden,
        503: ANSWERS.unavailable
      }
    }
  }, async (request) => ({ success: true as const, data: await changes.listChanges(request.principal, request.query) }))

  fastify.post('/api/webhooks', {
    schema: {
      operationId: 'createWebhook',
      tags: ['webhooks'],
      summary: 'Make a webhook endpoint (an organizer for its events, an admin for all); its secret is shown this once',
      description: `It gets the changes recorded from now on, of the types asked. The URL must be https and not a private address, unless the operator set WEBHOOK_ALLOW_HTTP or WEBHOOK_ALLOW_PRIVATE; the address is checked again at every delivery, as resolved then. ${DELIVERY}`,
      security: BEARER_SECURITY,
      body: ref(WebhookInputSchema),
      response: {
        201: okAnswer(ref(WebhookCreatedSchema), 'Made: with its `whsec_` secret', locationHeader('/api/webhooks/wh_665f1c2ab3e4d5f6a7b8c9d0')),
        ...BODY_ANSWERS,
        ...GUARDED_ANSWERS,
        403: ANSWERS.forbidden,
        503: ANSWERS.unavailable
      }
    }
  }, async (request, reply) => {
    const made = await changes.createWebhook(request.principal, request.body)
    reply.code(201).header('location', `/api/webhooks/${made._id}`)
    return { success: true as const, data: made }
  })

  fastify.get('/api/webhooks', {
    schema: {
      operationId: 'listWebhooks',
      tags: ['webhooks'],
      summary: 'The webhook endpoints the principal may see (an admin: all; an organizer: its own)',
      security: BEARER_SECURITY,
      response: {
        200: okAnswer(Type.Array(ref(WebhookSchema)), 'Endpoints, oldest first, without their secrets'),
        ...GUARDED_ANSWERS,
        403: ANSWERS.forbidden,
        503: ANSWERS.unavailable
      }
    }
  }, async (request) => ({ success: true as const, data: await changes.listWebhooks(request.principal) }))

  fastify.get('/api/webhooks/:id', {
    schema: {
      operationId: 'getWebhook',
      tags: ['webhooks'],
      summary: 'One webhook endpoint: whether it is disabled, its failures in a row and its last error',
      description: 'Its organizer or an admin sees it; to anyone else it is 404.',
      security: BEARER_SECURITY,
      params: WebhookIdParamsSchema,
      response: {
        200: okAnswer(ref(WebhookSchema), 'The endpoint, without its secret'),
        400: ANSWERS.badInput,
        ...GUARDED_ANSWERS,
        404: ANSWERS.notFound,
        414: ANSWERS.uriTooLong,
        503: ANSWERS.unavailable
      }
    }
  }, async (request) => ({ success: true as const, data: await changes.getWebhook(request.principal, request.params.id) }))

  fastify.delete('/api/webhooks/:id', {
    schema: {
      operationId: 'deleteWebhook',
      tags: ['webhooks'],
      summary: 'Delete a webhook endpoint: no more deliveries',
      description: 'Its organizer or an admin deletes it; to anyone else it is 404.',
      security: BEARER_SECURITY,
      params: WebhookIdParamsSchema,
      response: {
        204: Type.Null({ description: 'Deleted' }),
        400: ANSWERS.badInput,
        ...GUARDED_ANSWERS,
        404: ANSWERS.notFound,
        414: ANSWERS.uriTooLong,
        503: ANSWERS.unavailable
      }
    }
  }, async (request, reply) => {
    await changes.deleteWebhook(request.principal, request.params.id)
    return await reply.code(204).send(null)
  })
}

export default routes
