import { isUtf8 } from 'node:buffer'
import { STATUS_CODES } from 'node:http'
import type { Socket } from 'node:net'
import { Ajv, type ErrorObject } from 'ajv'
import type { ConnectionError, FastifyError, FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { DomainError, ExpectedError, type ErrorCode } from '../lib/errors.ts'
import type { BookingOutcome } from '../lib/metrics.ts'
import { TEXT_PATTERN } from '../lib/schemas.ts'

/** An error the HTTP layer itself answers (the rate limit), in the same envelope as domain errors. */
export class HttpError extends ExpectedError {
  readonly statusCode: number
  readonly code: string
  readonly outcome: BookingOutcome
  readonly details: Record<string, unknown>

  constructor (statusCode: number, code: string, message: string, outcome: BookingOutcome, details: Record<string, unknown> = {}) {
    super(message)
    this.statusCode = statusCode
    this.code = code
    this.outcome = outcome
    this.details = details
  }
}

/** HTTP status and booking outcome of each domain error code. */
const DOMAIN_ANSWERS: Record<ErrorCode, { status: number, outcome: BookingOutcome }> = {
  VALIDATION_ERROR: { status: 400, outcome: 'invalid' },
  NOT_FOUND: { status: 404, outcome: 'invalid' },
  SOLD_OUT: { status: 409, outcome: 'sold_out' },
  IDEMPOTENCY_KEY_REUSED: { status: 422, outcome: 'invalid' },
  BUSY: { status: 503, outcome: 'busy' },
  STORE_UNAVAILABLE: { status: 503, outcome: 'error' },
  UNAUTHENTICATED: { status: 401, outcome: 'denied' },
  FORBIDDEN: { status: 403, outcome: 'denied' },
  AUTH_UNAVAILABLE: { status: 503, outcome: 'error' },
  LIMIT_EXCEEDED: { status: 409, outcome: 'user_limit' },
  HOLD_EXPIRED: { status: 410, outcome: 'invalid' },
  INVALID_STATE: { status: 409, outcome: 'invalid' }
}

/** Our codes for Fastify's own client errors. */
const FASTIFY_CODES: Record<string, string> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'BAD_REQUEST',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'VALIDATION_ERROR',
  FST_ERR_CTP_INVALID_JSON_BODY: 'INVALID_JSON'
}

interface Answer {
  status: number
  outcome: BookingOutcome
  error: { code: string, message: string, [detail: string]: unknown }
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
    const { status, outcome } = DOMAIN_ANSWERS[error.code]
    return { status, outcome, error: { code: error.code, message: error.message, ...error.details }, cause: error.cause }
  }
  if (error instanceof HttpError) {
    return { status: error.statusCode, outcome: error.outcome, error: { code: error.code, message: error.message, ...error.details } }
  }
  if (error.validation !== undefined) {
    const first = error.validation[0] as ErrorObject
    const part = error.validationContext ?? 'body'
    return { status: 400, outcome: 'invalid', error: { code: 'VALIDATION_ERROR', message: describe(first, part), field: fieldOf(first) || part } }
  }
  const status = error.statusCode ?? 500
  if (status < 500) return { status, outcome: 'invalid', error: { code: FASTIFY_CODES[error.code] ?? 'BAD_REQUEST', message: error.message } }
  return { status: 500, outcome: 'error', error: { code: 'INTERNAL_ERROR', message: 'Internal Server Error' }, cause: error }
}

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
  fastify.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? bodyAjv : textAjv).compile(schema))

  // POST /api/bookings/:id/cancel needs no body, but many clients send the JSON
  // content type with an empty one: read that as no body instead of an error.
  // JSON is UTF-8 (RFC 8259): other bytes are refused, not decoded to U+FFFD.
  const parseJson = fastify.getDefaultJsonParser('error', 'error')
  fastify.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    const bytes = body as Buffer
    if (bytes.length === 0) done(null, undefined)
    else if (!isUtf8(bytes)) done(new HttpError(400, 'INVALID_JSON', 'body is not valid UTF-8', 'invalid'), undefined)
    else parseJson(request, bytes.toString('utf8'), done)
  })

  fastify.setErrorHandler((error: FastifyError | DomainError | HttpError, request, reply) => {
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
  })

  fastify.setNotFoundHandler((request, reply) => {
    return reply.code(404).send({
      success: false,
      error: { code: 'NOT_FOUND', message: `Route ${request.method} ${request.url.split('?')[0]} not found` }
    })
  })
}, { name: 'errors', dependencies: ['metrics'] })

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
