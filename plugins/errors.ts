import { Ajv, type ErrorObject } from 'ajv'
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { DomainError } from '../lib/errors.ts'

/** HTTP status of each domain error code. */
const STATUS_BY_CODE: Record<string, number> = {
  NOT_FOUND: 404,
  SOLD_OUT: 409,
  IDEMPOTENCY_KEY_REUSED: 422,
  RATE_LIMITED: 429,
  BUSY: 503,
  STORE_UNAVAILABLE: 503
}

/** Our codes for Fastify's own client errors. */
const FASTIFY_CODES: Record<string, string> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'BAD_REQUEST',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'VALIDATION_ERROR',
  FST_ERR_CTP_INVALID_JSON_BODY: 'INVALID_JSON'
}

/** The input field an ajv error is about, as `qty` or `sections.0.capacity`. */
export function fieldOf (error: ErrorObject): string {
  const path = error.instancePath.split('/').filter(Boolean)
  const params = error.params as { additionalProperty?: string, missingProperty?: string }
  if (error.keyword === 'additionalProperties' && params.additionalProperty !== undefined) path.push(params.additionalProperty)
  if (error.keyword === 'required' && params.missingProperty !== undefined) path.push(params.missingProperty)
  return path.join('.')
}

/** A message that names the field: "body.qty must be <= 10", "body.foo is not allowed". */
export function describe (error: ErrorObject, part: string): string {
  const field = fieldOf(error)
  const where = field === '' ? part : `${part}.${field}`
  if (error.keyword === 'additionalProperties') return `${where} is not allowed`
  if (error.keyword === 'required') return `${where} is required`
  return `${where} ${error.message ?? 'is invalid'}`
}

/**
 * Answers a domain error in the envelope with its status. The error handler uses
 * it, and so does the booking route directly: going through Fastify's error path
 * costs a sold-out answer about a sixth of its throughput.
 */
export function replyDomainError (request: FastifyRequest, reply: FastifyReply, error: DomainError): FastifyReply {
  const status = STATUS_BY_CODE[error.code] ?? 500
  if (status === 503) reply.header('retry-after', String(error.details.retryAfter ?? 1))
  if (status >= 500) request.log.warn({ code: error.code, err: error.cause ?? error }, error.message)
  return reply.code(status).send({ success: false, error: { code: error.code, message: error.message, ...error.details } })
}

/**
 * Validation and the error envelope. Bodies are validated strictly (no type
 * coercion: "2" is not a qty); query strings, params and headers are text, so
 * those are coerced. Unknown fields are rejected, never silently dropped.
 */
export default fp(async (fastify) => {
  const base = { useDefaults: true, removeAdditional: false, allErrors: false, strict: false } as const
  const bodyAjv = new Ajv({ ...base, coerceTypes: false })
  const textAjv = new Ajv({ ...base, coerceTypes: 'array' })
  fastify.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? bodyAjv : textAjv).compile(schema))

  // POST /api/bookings/:id/cancel needs no body, but many clients send the JSON
  // content type with an empty one: read that as no body instead of an error.
  const parseJson = fastify.getDefaultJsonParser('error', 'error')
  fastify.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    if (body === '') done(null, undefined)
    else parseJson(request, body as string, done)
  })

  fastify.setErrorHandler((error: FastifyError | DomainError, request, reply) => {
    if (error instanceof DomainError) return replyDomainError(request, reply, error)
    if (error.validation !== undefined) {
      const first = error.validation[0] as ErrorObject
      const part = error.validationContext ?? 'body'
      return reply.code(400).send({
        success: false,
        error: { code: 'VALIDATION_ERROR', message: describe(first, part), field: fieldOf(first) || part }
      })
    }
    const status = error.statusCode ?? 500
    if (status < 500) {
      return reply.code(status).send({
        success: false,
        error: { code: FASTIFY_CODES[error.code] ?? 'BAD_REQUEST', message: error.message }
      })
    }
    request.log.error({ err: error }, 'unhandled error')
    return reply.code(500).send({ success: false, error: { code: 'INTERNAL_ERROR', message: 'Internal Server Error' } })
  })

  fastify.setNotFoundHandler((request, reply) => {
    return reply.code(404).send({
      success: false,
      error: { code: 'NOT_FOUND', message: `Route ${request.method} ${request.url.split('?')[0]} not found` }
    })
  })
}, { name: 'errors' })
