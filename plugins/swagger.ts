import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import fp from 'fastify-plugin'
import { OPTIONAL_BODY } from '../lib/api/responses.ts'

const DESCRIPTION = `Books seats of event sections; no seat is ever sold twice.

Every answer is \`{ "success": true, "data": ... }\` or \`{ "success": false, "error": { "code", "message", ... } }\`
(the \`Error\` schema); each failed answer lists the codes its status carries. Ids are 24 hex digits, in \`_id\`.

Writes and private reads need \`Authorization: Bearer <JWT>\` (\`sub\` is the principal, \`roles\` an array of
customer, organizer, service, admin); event reads, health and the docs are public.`

/**
 * OpenAPI 3 built from the routes' TypeBox schemas: Swagger UI at /docs, the
 * document at /docs/json. Named schemas (plugins/schemas.ts) become components
 * under their own names, so a generated client has them as types.
 */
export default fp(async (fastify) => {
  await fastify.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'Ticket booking service',
        description: DESCRIPTION,
        version: '1.0.0'
      },
      // relative: the server that serves this document
      servers: [{ url: '/', description: 'this server' }],
      components: {
        securitySchemes: {
          bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'A JWT: `sub` is the principal, `roles` an array of customer, organizer, service, admin' },
          metricsToken: { type: 'http', scheme: 'bearer', description: 'METRICS_TOKEN, when the service sets one' }
        }
      },
      tags: [
        { name: 'events', description: 'Events and their sections' },
        { name: 'bookings', description: 'Booking, holding, confirming and cancelling seats' },
        { name: 'waitlist', description: 'Waiting for seats of a sold-out section: offers, in order, as seats come back' },
        { name: 'ops', description: 'Health and metrics' }
      ]
    },
    // components keep the names of their $id (Event, Booking, Error, ...) instead of def-0, def-1, ...
    refResolver: {
      buildLocalReference: (json, _baseUri, _fragment, i) => typeof json.$id === 'string' ? json.$id : `def-${i}`
    },
    // @fastify/swagger marks every request body required; a route that
    // accepts none says so with OPTIONAL_BODY (copied to its operation, then dropped)
    transformObject: (document) => {
      if (!('openapiObject' in document)) return document.swaggerObject
      const { openapiObject } = document
      for (const item of Object.values(openapiObject.paths ?? {})) {
        for (const operation of Object.values(item ?? {}) as Array<Record<string, unknown> & { requestBody?: { required?: boolean } }>) {
          if (typeof operation !== 'object' || operation === null || !(OPTIONAL_BODY in operation)) continue
          if (operation.requestBody !== undefined) operation.requestBody.required = false
          delete operation[OPTIONAL_BODY]
        }
      }
      return openapiObject
    }
  })
  await fastify.register(swaggerUi, { routePrefix: '/docs' })
}, { name: 'swagger', dependencies: ['schemas'] })
