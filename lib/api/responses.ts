/**
 * The answers of the API, as schemas for serialization and the OpenAPI
 * document: the success envelope, the Error envelope with the codes each
 * status carries, and the headers that go with them. plugins/errors.ts sends
 * the errors; the routes declare which of these they can answer.
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox'
import { EXAMPLE_IDS, stringEnum } from './schemas.ts'

/** Every `error.code` the API answers, and what it means. */
export const ERROR_CODES = {
  VALIDATION_ERROR: 'an input field is invalid; `field` names it and the message says why',
  INVALID_JSON: 'the body is not valid JSON',
  BAD_REQUEST: 'the request itself is malformed (its URL encoding or Content-Length)',
  UNAUTHENTICATED: 'no valid bearer token: missing, malformed, expired, not yet valid, wrongly signed, or for another issuer or audience',
  FORBIDDEN: 'the principal\'s roles do not allow this',
  NOT_FOUND: 'no such resource, or one the principal may not see (ids reveal nothing)',
  SOLD_OUT: 'fewer than qty seats remained when the request was decided; `remaining` says how many',
  LIMIT_EXCEEDED: 'the user would pass the event\'s maxPerUser; `allowed` says how many more seats it may take',
  INVALID_STATE: 'the booking or event cannot make this transition (another paymentRef on a confirmed booking, a cancelled one confirmed, a cancelled event published); `status` is its status',
  SALE_NOT_OPEN: 'the event\'s sale has not opened yet (the database\'s clock decides); `opensAt` says when it does',
  SALE_CLOSED: 'the event\'s sale is over: salesEnd passed, or the event was closed or cancelled',
  CAPACITY_BELOW_TAKEN: 'a section\'s capacity cannot go below its seats held plus sold; `minimum` is that',
  SEATS_AVAILABLE: 'the section can serve the qty asked to wait for: book instead; `remaining` says how many seats are on sale',
  HOLD_EXPIRED: 'the hold passed its expiresAt before the confirm: it expired and its seats went back on sale',
  REQUEST_TIMEOUT: 'the request did not arrive within REQUEST_TIMEOUT_MS (answered by the connection, before any route)',
  PAYLOAD_TOO_LARGE: 'the body is over 64 KiB',
  URI_TOO_LONG: 'a path parameter is over 100 characters',
  UNSUPPORTED_MEDIA_TYPE: 'the body is not application/json',
  HEADERS_TOO_LARGE: 'the request\'s headers are over the server\'s limit (answered by the connection, before any route)',
  IDEMPOTENCY_KEY_REUSED: 'the Idempotency-Key was used with another body',
  RATE_LIMITED: 'too many booking requests from this principal; retry after `retryAfter` seconds',
  INTERNAL_ERROR: 'a fault of the server itself; the message is hidden',
  BUSY: 'the section stayed busy past the request\'s deadline; nothing was changed, retry after `retryAfter` seconds',
  STORE_UNAVAILABLE: 'the database is out of reach or did not answer in time: the change may or may not have been applied; retry after `retryAfter` seconds with the same Idempotency-Key (a booking made is then answered, not made twice)',
  AUTH_UNAVAILABLE: 'the identity provider\'s keys cannot be fetched; retry after `retryAfter` seconds',
  DEPENDENCY_DOWN: 'the store or the lock quorum is out of reach; `dependency` names it, `checks` has every check'
} as const
export type ApiErrorCode = keyof typeof ERROR_CODES
const CODES = Object.keys(ERROR_CODES) as ApiErrorCode[]

/** What readiness found: Redis nodes by their index in REDIS_NODES; addresses and driver errors go to the log only. */
export const ReadinessChecksSchema = Type.Object({
  store: Type.Object({ ok: Type.Boolean(), latencyMs: Type.Optional(Type.Number()) }),
  redis: Type.Optional(Type.Object({
    up: Type.Integer({ description: 'Redis nodes that answered' }),
    of: Type.Integer({ description: 'Redis nodes configured' }),
    quorum: Type.Integer({ description: 'nodes the lock needs' }),
    down: Type.Array(Type.Integer(), { description: 'indexes in REDIS_NODES (from 0) of the nodes that did not answer' })
  }, { description: 'absent without REDIS_NODES' }))
}, { description: 'each dependency\'s check' })

export const ErrorSchema = Type.Object({
  success: Type.Literal(false),
  error: Type.Object({
    code: stringEnum(CODES, { description: 'stable, for programs; each answer lists the codes of its status' }),
    message: Type.String({ description: 'for people; names the offending field on validation errors' }),
    field: Type.Optional(Type.String({ description: 'the offending input field, on VALIDATION_ERROR' })),
    remaining: Type.Optional(Type.Integer({ description: 'seats left, on SOLD_OUT and SEATS_AVAILABLE' })),
    allowed: Type.Optional(Type.Integer({ description: 'seats the user may still take in the event, on LIMIT_EXCEEDED' })),
    requested: Type.Optional(Type.Integer({ description: 'the qty asked for, on SOLD_OUT and LIMIT_EXCEEDED; the capacity asked for, on CAPACITY_BELOW_TAKEN' })),
    status: Type.Optional(Type.String({ description: 'the booking\'s or event\'s status, on INVALID_STATE' })),
    opensAt: Type.Optional(Type.String({ format: 'date-time', description: 'when the sale opens, on SALE_NOT_OPEN' })),
    minimum: Type.Optional(Type.Integer({ description: 'the lowest capacity the section may have (held + sold), on CAPACITY_BELOW_TAKEN' })),
    retryAfter: Type.Optional(Type.Integer({ description: 'seconds, on 429 and 503 (also the Retry-After header)' })),
    resource: Type.Optional(Type.String({ description: 'what was not found, on NOT_FOUND' })),
    id: Type.Optional(Type.String({ description: 'the id concerned, on NOT_FOUND, INVALID_STATE, HOLD_EXPIRED' })),
    dependency: Type.Optional(Type.String({ description: 'what is lost, on DEPENDENCY_DOWN: `store`, `redis` (the lock quorum), or both comma-separated' })),
    checks: Type.Optional(ReadinessChecksSchema)
  }, { additionalProperties: true })
}, { $id: 'Error', description: 'Every failed answer: `{ success: false, error: { code, message, ... } }`' })
export type ErrorEnvelope = Static<typeof ErrorSchema>

export const HealthSchema = Type.Object({
  status: Type.Literal('ok'),
  uptime: Type.Number({ description: 'seconds since the process started', examples: [3600.5] }),
  store: Type.String({ description: 'embedded, postgres or mongo', examples: ['postgres'] }),
  checks: Type.Optional(ReadinessChecksSchema)
}, { $id: 'Health', description: 'The process answers; with checks, its dependencies do too' })

/** The named answer schemas (plugins/schemas.ts registers them with those of lib/api/schemas.ts). */
export const ANSWER_SCHEMAS: TSchema[] = [ErrorSchema, HealthSchema]

/** A realistic `error` of each code, for the document's examples. */
const EXAMPLES: Record<ApiErrorCode, Record<string, unknown>> = {
  VALIDATION_ERROR: { message: 'body.qty must be <= 10', field: 'qty' },
  INVALID_JSON: { message: 'Body is not valid JSON but content-type is set to \'application/json\'' },
  BAD_REQUEST: { message: 'The URL path is not valid (bad percent-encoding)' },
  UNAUTHENTICATED: { message: 'Authentication required: a bearer token is required (Authorization: Bearer <token>)' },
  FORBIDDEN: { message: 'Only organizers and admins create events' },
  NOT_FOUND: { message: `Event ${EXAMPLE_IDS.event} not found`, resource: 'event', id: EXAMPLE_IDS.event },
  SOLD_OUT: { message: 'Only 1 seat(s) remain, 2 requested', remaining: 1, requested: 2 },
  LIMIT_EXCEEDED: { message: 'At most 1 more seat(s) for this user in this event, 2 requested', allowed: 1, requested: 2 },
  INVALID_STATE: { message: `Booking ${EXAMPLE_IDS.booking} is cancelled: only a held booking can be confirmed`, id: EXAMPLE_IDS.booking, status: 'cancelled' },
  SALE_NOT_OPEN: { message: 'The sale opens at 2026-06-01T10:00:00.000Z', opensAt: '2026-06-01T10:00:00.000Z' },
  SALE_CLOSED: { message: 'The sale of this event is over: it ended, or was closed or cancelled' },
  CAPACITY_BELOW_TAKEN: { message: 'Capacity cannot go below 120, the seats held and sold; 100 asked', minimum: 120, requested: 100 },
  SEATS_AVAILABLE: { message: '3 seat(s) remain, 2 asked: book them instead of waiting', remaining: 3, requested: 2 },
  HOLD_EXPIRED: { message: `Booking ${EXAMPLE_IDS.booking} was held until its expiresAt, which has passed: it expired`, id: EXAMPLE_IDS.booking },
  REQUEST_TIMEOUT: { message: 'the request did not arrive in time' },
  PAYLOAD_TOO_LARGE: { message: 'Request body is too large' },
  URI_TOO_LONG: { message: 'A path parameter is over 100 characters' },
  UNSUPPORTED_MEDIA_TYPE: { message: 'Unsupported Media Type: the body must be application/json' },
  HEADERS_TOO_LARGE: { message: 'request headers too large' },
  IDEMPOTENCY_KEY_REUSED: { message: 'Idempotency-Key was already used with a different request body' },
  RATE_LIMITED: { message: 'Too many booking requests: at most 100 per window, retry in 42 s', retryAfter: 42 },
  INTERNAL_ERROR: { message: 'Internal Server Error' },
  BUSY: { message: 'Section is busy (waited past the lock deadline), retry later', retryAfter: 1 },
  STORE_UNAVAILABLE: { message: 'Storage is temporarily unavailable, retry later', retryAfter: 1 },
  AUTH_UNAVAILABLE: { message: 'Token keys are temporarily unavailable, retry later', retryAfter: 5 },
  DEPENDENCY_DOWN: {
    message: 'Not ready: the lock quorum (2 of 3 Redis nodes needed, 1 answer) lost',
    dependency: 'redis',
    checks: { store: { ok: true, latencyMs: 0.61 }, redis: { up: 1, of: 3, quorum: 2, down: [0, 2] } }
  }
}

/** A response header: its schema with `description` (the document moves it to the header) and one `example`. */
function header (description: string, schema: Record<string, unknown>): Record<string, unknown> {
  return { ...schema, description }
}

/** Location of a 201: the path of what was created. */
export function locationHeader (example: string): Record<string, unknown> {
  return { Location: header('the path of the created resource', { type: 'string', format: 'uri-reference', example }) }
}
const RETRY_AFTER = { 'Retry-After': header('seconds to wait before retrying', { type: 'integer', minimum: 0, example: 1 }) }
/** What a rate-limited route sends on every answer once the limit is on (RATE_LIMIT_MAX > 0). */
export const RATE_LIMIT_HEADERS = {
  'X-RateLimit-Limit': header('requests allowed per window (only with RATE_LIMIT_MAX)', { type: 'integer', example: 100 }),
  'X-RateLimit-Remaining': header('requests left in this window', { type: 'integer', example: 99 }),
  'X-RateLimit-Reset': header('seconds until the window resets', { type: 'integer', example: 42 })
}
export const IDEMPOTENT_REPLAYED_HEADER = {
  'Idempotent-Replayed': header('present on the answer to a retried Idempotency-Key: the original booking, nothing new was sold', { type: 'string', enum: ['true'], example: 'true' })
}
const WWW_AUTHENTICATE = {
  'WWW-Authenticate': header('the scheme to authenticate with; error="invalid_token" when a token was sent', { type: 'string', example: 'Bearer realm="ticket-booking"' })
}

/** `{ success: true, data }`: a successful answer, with the headers it may carry. */
export function okAnswer<T extends TSchema> (data: T, description: string, headers?: Record<string, unknown>) {
  return Type.Object({ success: Type.Literal(true), data }, { description, ...(headers === undefined ? {} : { headers }) })
}

/**
 * A failed answer of one status: the Error envelope whose code is one of
 * `codes` (an enum per answer), its description listing them, one example each.
 */
export function errorAnswer (codes: readonly [ApiErrorCode, ...ApiErrorCode[]], headers?: Record<string, unknown>) {
  return Type.Unsafe<ErrorEnvelope>({
    description: codes.map(code => `\`${code}\`: ${ERROR_CODES[code]}`).join('; '),
    ...(headers === undefined ? {} : { headers }),
    allOf: [
      Type.Ref(ErrorSchema.$id as string),
      { type: 'object', required: ['error'], properties: { error: { type: 'object', required: ['code'], properties: { code: { type: 'string', enum: codes } }, additionalProperties: true } } }
    ],
    // a named example per code (@fastify/swagger moves x-examples to the response's examples)
    'x-examples': Object.fromEntries(codes.map(code => [code, { value: { success: false, error: { code, ...EXAMPLES[code] } } }]))
  })
}

/** The status each code is answered with (plugins/errors.ts answers every error by this table). */
export const STATUS_OF: Record<ApiErrorCode, number> = {
  VALIDATION_ERROR: 400,
  INVALID_JSON: 400,
  BAD_REQUEST: 400,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  SOLD_OUT: 409,
  LIMIT_EXCEEDED: 409,
  INVALID_STATE: 409,
  SALE_NOT_OPEN: 409,
  SALE_CLOSED: 409,
  CAPACITY_BELOW_TAKEN: 409,
  SEATS_AVAILABLE: 409,
  HOLD_EXPIRED: 410,
  REQUEST_TIMEOUT: 408,
  PAYLOAD_TOO_LARGE: 413,
  URI_TOO_LONG: 414,
  UNSUPPORTED_MEDIA_TYPE: 415,
  HEADERS_TOO_LARGE: 431,
  IDEMPOTENCY_KEY_REUSED: 422,
  RATE_LIMITED: 429,
  INTERNAL_ERROR: 500,
  BUSY: 503,
  STORE_UNAVAILABLE: 503,
  AUTH_UNAVAILABLE: 503,
  DEPENDENCY_DOWN: 503
}

/** The failed answers most routes share. */
export const ANSWERS = {
  badInput: errorAnswer(['VALIDATION_ERROR', 'BAD_REQUEST']),
  badBody: errorAnswer(['VALIDATION_ERROR', 'INVALID_JSON', 'BAD_REQUEST']),
  unauthenticated: errorAnswer(['UNAUTHENTICATED'], WWW_AUTHENTICATE),
  forbidden: errorAnswer(['FORBIDDEN']),
  notFound: errorAnswer(['NOT_FOUND']),
  payloadTooLarge: errorAnswer(['PAYLOAD_TOO_LARGE']),
  uriTooLong: errorAnswer(['URI_TOO_LONG']),
  unsupportedMediaType: errorAnswer(['UNSUPPORTED_MEDIA_TYPE']),
  rateLimited: errorAnswer(['RATE_LIMITED'], { ...RETRY_AFTER, ...RATE_LIMIT_HEADERS }),
  internal: errorAnswer(['INTERNAL_ERROR']),
  /** 503 of public reads: the store */
  storeUnavailable: errorAnswer(['STORE_UNAVAILABLE'], RETRY_AFTER),
  /** 503 of routes with a principal: the store, or the token keys */
  unavailable: errorAnswer(['STORE_UNAVAILABLE', 'AUTH_UNAVAILABLE'], RETRY_AFTER),
  /** 503 of section operations (book, confirm, cancel): also a section that stayed busy */
  busy: errorAnswer(['BUSY', 'STORE_UNAVAILABLE', 'AUTH_UNAVAILABLE'], RETRY_AFTER),
  notReady: errorAnswer(['DEPENDENCY_DOWN'], RETRY_AFTER),
  requestTimeout: errorAnswer(['REQUEST_TIMEOUT']),
  headersTooLarge: errorAnswer(['HEADERS_TOO_LARGE'])
}

/** What the connection answers before any route is matched, so any operation may get it (plugins/errors.ts adds it to each). */
export const CONNECTION_ANSWERS = { 408: ANSWERS.requestTimeout, 431: ANSWERS.headersTooLarge }

/** What every route with a principal may answer besides its own, and what a route reading a JSON body may. */
export const GUARDED_ANSWERS = { 401: ANSWERS.unauthenticated, 500: ANSWERS.internal }
export const BODY_ANSWERS = { 400: ANSWERS.badBody, 413: ANSWERS.payloadTooLarge, 415: ANSWERS.unsupportedMediaType }

/** OpenAPI security of the operations that need a principal (plugins/swagger.ts defines the scheme); public ones say none. */
export const BEARER_SECURITY = [{ bearerAuth: [] }]
export const PUBLIC: Array<Record<string, string[]>> = []
/** Public, and a bearer token when sent says who is asking (an organizer then sees its drafts). */
export const OPTIONAL_BEARER: Array<Record<string, string[]>> = [{}, { bearerAuth: [] }]

/** A route schema key: the route's body may be left out (plugins/swagger.ts then marks its requestBody not required). */
export const OPTIONAL_BODY = 'x-body-optional'
