import fp from 'fastify-plugin'
import { ANSWER_SCHEMAS } from '../lib/api/responses.ts'
import { NAMED_SCHEMAS } from '../lib/api/schemas.ts'
import { CHANGE_SCHEMAS } from '../lib/api/change-schemas.ts'
import { WAITLIST_SCHEMAS } from '../lib/api/waitlist-schemas.ts'

/**
 * The named schemas (Event, Booking, Error, ...), added once by their `$id`:
 * validation (plugins/errors.ts), serialization and the OpenAPI components
 * (plugins/swagger.ts) resolve the routes' references to them.
 */
export default fp(async (fastify) => {
  for (const schema of [...NAMED_SCHEMAS, ...CHANGE_SCHEMAS, ...WAITLIST_SCHEMAS, ...ANSWER_SCHEMAS]) fastify.addSchema(schema)
}, { name: 'schemas' })
