import { isUtf8 } from 'node:buffer'
import { STATUS_CODES } from 'node:http'
import type { Socket } from 'node:net'
import { Ajv, type ErrorObject } from 'ajv'
import addFormats from 'ajv-formats'
import type { ConnectionError, FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { DomainError, ExpectedError, type ErrorCode } from '../lib/domain/errors.ts'
import type { BookingOutcome } from '../lib/support/metrics.ts'
import { CONNECTION_ANSWERS, STATUS_OF, type ApiErrorCode } from '../lib/api/responses.ts'
import { TEXT_PATTERN } from '../lib/api/schemas.ts'

/** An error the HTTP layer itself answers (the rate limit), in the same envelope as domain errors. */
export class HttpError extends ExpectedError {
  readonly code: ApiErrorCode
  readonly outcome: BookingOutcome
  readonly details: Record<string, unknown>

  constructor (code: ApiErrorCode, message: string, outcome: BookingOutcome, details: Record<string, unknown> = {}) {
    super(message)
    this.code = code
    this.outcome = outcome
    this.details = details
  }
}

/** Booking outcome of each domain error code (its status is lib/api/responses.ts's STATUS_OF). */
const DOMAIN_OUTCOMES: Record<ErrorCode, BookingOutcome> = {
  VALIDATION_ERROR: 'invalid',
  NOT_FOUND: 'invalid',
  SOLD_OUT: 'sold_out',
  IDEMPOTENCY_KEY_REUSED: 'invalid',
  BUSY: 'busy',
  STORE_UNAVAILABLE: 'error',
  UNAUTHENTICATED: 'denied',
  FORBIDDEN: 'denied',
  AUTH_UNAVAILABLE: 'error',
  LIMIT_EXCEEDED: 'user_limit',
  HOLD_EXPIRED: 'invalid',
  INVALID_STATE: 'invalid',
  SALE_NOT_OPEN: 'not_open',
  SALE_CLOSED: 'closed',
  CAPACITY_BELOW_TAKEN: 'invalid',
  SEATS_AVAILABLE: 'invalid'
}

/** Our codes for Fastify's own client errors, and a message where Fastify's would echo the whole URL. */
const FASTIFY_CODES: Record<string, { code: ApiErrorCode, message?: string }> = {
  FST_ERR_CTP_BODY_TOO_LARGE: { code: 'PAYLOAD_TOO_LARGE' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { code: 'UNSUPPORTED_MEDIA_TYPE', message: 'Unsupported Media Type: the body must be application/json' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { code: 'BAD_REQUEST' },
  FST_ERR_CTP_EMPTY_JSON_BODY: { code: 'VALIDATION_ERROR' },
  FST_ERR_CTP_INVALID_JSON_BODY: { code: 'INVALID_JSON' },
  FST_ERR_BAD_URL: { code: 'BAD_REQUEST', message: 'The URL path is not valid (bad percent-encoding)' },
  FST_ERR_MAX_PARAM_LENGTH: { code: 'URI_TOO_LONG', message: 'A path parameter is over 100 characters' }
}

interface Answer {
  status: number
  outcome: BookingOutcome
  error: { code: ApiErrorCode, message: string, [detail: string]: unknown }
  /** what the log line carries besides the code: the cause of a 5xx */
  cause?: unknown
}

/** The input field an ajv error is about, as `qty` or `sections.0.capacity`. */
function fieldOf (error: ErrorObject): string {
  const path = error.instancePath.split('/').filter(Boolean)
  const params = error.params as { additionalProperty?: string, missingProperty?: string }
  if (error.keyword === 'additionalProperties' && params.additionalProperty !== undefined) path.push(params.additionalProperty)
  if (error.keyword === 'required' && params.missingProperty !== undefined) path.push(params.missingProperty)
  return path.join('.')
}

/** A message that names the field: "body.qty must be <= 10", "body.foo is not allowed". */
function describe (error: ErrorObject, part: string): string {
  const field = fieldOf(error)
  const where = field === '' ? part : `${part}.${field}`
  if (error.keyword === 'additionalProperties') return `${where} is not allowed`
  if (error.keyword === 'required') return `${where} is required`
  if (error.keyword === 'pattern' && (error.params as { pattern?: string }).pattern === TEXT_PATTERN) return `${where} must not contain NUL (U+0000) or unpaired surrogates`
  return `${where} ${error.message ?? 'is invalid'}`
}

/** Every error's answer: status, envelope and outcome. Messages of 500s are hidden. */
function answerOf (error: FastifyError | DomainError | HttpError): Answer {
  if (error instanceof DomainError) {
    return { status: STATUS_OF[error.code], outcome: DOMAIN_OUTCOMES[error.code], error: { code: error.code, message: error.message, ...error.details }, cause: error.cause }
  }
  if (error instanceof HttpError) {
    return { status: STATUS_OF[error.code], outcome: error.outcome, error: { code: error.code, message: error.message, ...error.details } }
  }
  if (error.validation !== undefined) {
    const first = error.validation[0] as ErrorObject
    const part = error.validationContext ?? 'body'
    return { status: 400, outcome: 'invalid', error: { code: 'VALIDATION_ERROR', message: describe(first, part), field: fieldOf(first) || part } }
  }
  const known = FASTIFY_CODES[error.code]
  if (known !== undefined) return { status: STATUS_OF[known.code], outcome: 'invalid', error: { code: known.code, message: known.message ?? error.message } }
  const status = error.statusCode ?? 500
  if (status < 500) return { status, outcome: 'invalid', error: { code: 'BAD_REQUEST', message: error.message } }
  return { status: 500, outcome: 'error', error: { code: 'INTERNAL_ERROR', message: 'Internal Server Error' }, cause: error }
}

/** Answers an error: status, envelope, headers, the request's booking outcome and its log line. */
function answerError (error: FastifyError | DomainError | HttpError, request: FastifyRequest, reply: FastifyReply): void {
  const answer = answerOf(error)
  request.outcome = answer.outcome
  if (answer.status === 500) {
    request.log.error({ err: error }, 'unhandled error')
  } else if (answer.status >= 500) {
    reply.header('retry-after', String(answer.error.retryAfter ?? 1))
    request.log.warn({ code: answer.error.code, err: answer.cause ?? error }, answer.error.message)
  } else {
    // RFC 6750: a 401 names the scheme; with a token that failed, says it was invalid
    if (answer.status === 401) reply.header('www-authenticate', request.headers.authorization === undefined ? 'Bearer realm="ticket-booking"' : 'Bearer realm="ticket-booking", error="invalid_token"')
    request.log.info({ code: answer.error.code }, answer.error.message)
  }
  // sent, not returned: a returned reply is awaited as a thenable, a sixth of a sold-out answer's cost
  reply.code(answer.status).send({ success: false, error: answer.error })
}

/**
 * The `frameworkErrors` option of the server (app.ts): errors Fastify meets
 * before a route is found (a path parameter over maxParamLength, a malformed
 * URL) answered in the envelope like every other error.
 */
export const frameworkErrors: (error: FastifyError, request: FastifyRequest, reply: FastifyReply) => void = answerError

/**
 * Validation and the one error path: routes throw, this answers in the
 * envelope, sets the request's booking outcome and writes the log line.
 * Bodies are validated strictly (no type coercion: "2" is not a qty); query
 * strings, params and headers are text, so those are coerced. Unknown fields
 * are rejected, never silently dropped.
 */
export default fp(async (fastify) => {
  const base = { useDefaults: true, removeAdditional: false, allErrors: false, strict: false } as const
  const bodyAjv = new Ajv({ ...base, coerceTypes: false })
  const textAjv = new Ajv({ ...base, coerceTypes: 'array' })
  // date-time (an event's moments): RFC 3339 with a time zone, checked, not ignored
  for (const ajv of [bodyAjv, textAjv]) addFormats(ajv, ['date-time'])
  // the named schemas (plugins/schemas.ts), so the routes' references resolve
  for (const schema of Object.values(fastify.getSchemas()) as object[]) {
    bodyAjv.addSchema(schema)
    textAjv.addSchema(schema)
  }
  fastify.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? bodyAjv : textAjv).compile(schema))

  // JSON only: without this, Fastify would read a text/plain body as a string (then a 400) instead of answering 415
  fastify.removeContentTypeParser('text/plain')

  // POST /api/bookings/:id/cancel needs no body, but many clients send the JSON
  // content type with an empty one: read that as no body instead of an error.
  // JSON is UTF-8 (RFC 8259): other bytes are refused, not decoded to U+FFFD.
  const parseJson = fastify.getDefaultJsonParser('error', 'error')
  fastify.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    const bytes = body as Buffer
    if (bytes.length === 0) done(null, undefined)
    else if (!isUtf8(bytes)) done(new HttpError('INVALID_JSON', 'body is not valid UTF-8', 'invalid'), undefined)
    else parseJson(request, bytes.toString('utf8'), done)
  })

  fastify.setErrorHandler(answerError)

  // a request timeout or oversized headers is answered by the connection (clientErrorHandler), on any route
  fastify.addHook('onRoute', (route) => {
    const schema = route.schema as { response?: Record<string, unknown> } | undefined
    if (schema?.response !== undefined) schema.response = { ...schema.response, ...CONNECTION_ANSWERS }
  })

  fastify.setNotFoundHandler((request, reply) => {
    return reply.code(404).send({
      success: false,
      error: { code: 'NOT_FOUND', message: `Route ${request.method} ${request.url.split('?')[0]} not found` }
    })
  })
}, { name: 'errors', dependencies: ['metrics', 'schemas'] })

/** A header line holding a character HTTP forbids in a header (NUL, other controls): its name, lower-case. */
function headerWithBadChar (raw: ConnectionError['rawPacket'] | Buffer | undefined): string | undefined {
  if (raw === undefined) return undefined
  // a Buffer at run time (Fastify's type describes its JSON form)
  const head = (Buffer.isBuffer(raw) ? raw : Buffer.from(raw.data)).toString('latin1').split('\r\n\r\n')[0]
  // eslint-disable-next-line no-control-regex
  const line = head.split('\r\n').slice(1).find(l => /[\x00-\x08\x0A-\x1F\x7F]/.test(l))
  return line?.split(':')[0].trim().toLowerCase()
}

/**
 * Answers what Node's HTTP parser refuses before a request exists (a request
 * timeout, oversized headers, a malformed request such as a NUL in a header),
 * in the envelope, then closes the connection. Written to the socket: there
 * is no reply object. Passed to Fastify as its `clientErrorHandler` (app.ts).
 */
export function clientErrorHandler (this: FastifyInstance, err: ConnectionError, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return
  let status = 400
  let error: Answer['error'] = { code: 'BAD_REQUEST', message: 'malformed HTTP request' }
  const header = err.code === 'HPE_INVALID_HEADER_TOKEN' ? headerWithBadChar(err.rawPacket) : undefined
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    status = 408
    error = { code: 'REQUEST_TIMEOUT', message: 'the request did not arrive in time' }
  } else if (err.code === 'HPE_HEADER_OVERFLOW') {
    status = 431
    error = { code: 'HEADERS_TOO_LARGE', message: 'request headers too large' }
  } else if (header !== undefined) {
    error = { code: 'VALIDATION_ERROR', message: `headers.${header} must not contain NUL or other control characters`, field: header }
  }
  this.log.info({ code: error.code, reason: err.message }, 'client error')
  // as Node does: no answer once a response to this connection has started
  const response = (socket as Socket & { _httpMessage?: { headersSent: boolean } })._httpMessage
  if (socket.writable && response?.headersSent !== true) {
    const body = JSON.stringify({ success: false, error })
    socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`)
  }
  socket.destroy()
}
