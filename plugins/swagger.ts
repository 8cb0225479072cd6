import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import fp from 'fastify-plugin'

/** OpenAPI 3 built from the routes' TypeBox schemas: Swagger UI at /docs, the document at /docs/json. */
export default fp(async (fastify) => {
  await fastify.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'Ticket booking service',
        description: 'Books seats of event sections; no seat is ever sold twice. Every answer is `{ success, data }` or `{ success: false, error }`.',
        version: '1.0.0'
      },
      components: {
        securitySchemes: {
          bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'A JWT: `sub` is the principal, `roles` an array of customer, organizer, service, admin' },
          metricsToken: { type: 'http', scheme: 'bearer', description: 'METRICS_TOKEN, when the service sets one' }
        }
      },
      tags: [
        { name: 'events', description: 'Events and their sections' },
        { name: 'bookings', description: 'Booking and cancelling seats' },
        { name: 'ops', description: 'Health and metrics' }
      ]
    }
  })
  await fastify.register(swaggerUi, { routePrefix: '/docs' })
}, { name: 'swagger' })
