/**
 * TypeBox schemas shared by the routes (validation, serialization) and the
 * OpenAPI document, and the domain types derived from them.
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox'

/** Every id is a 24-hex-digit ObjectId string, whatever the store. */
export const ID_PATTERN = '^[0-9a-fA-F]{24}$'
export const IdSchema = Type.String({ pattern: ID_PATTERN, description: '24 hex digits', examples: ['665f1c2b9a1e4b3c8d7e6f50'] })

export const MAX_QTY = 10
export const MAX_SECTIONS = 100
export const MAX_CAPACITY = 1_000_000
export const MAX_PAGE_SIZE = 100
export const MAX_HOLD_SECONDS = 86_400
export const MAX_PER_USER = 10_000

/**
 * Free text a store can hold: no NUL (PostgreSQL refuses U+0000) and no
 * unpaired UTF-16 surrogate (it cannot be encoded as UTF-8, so a store would
 * keep U+FFFD instead). Ajv compiles patterns with the `u` flag, so a paired
 * surrogate is one code point and passes; only a lone one matches the class.
 * Every other input string has a pattern of printable ASCII or hex.
 */
export const TEXT_PATTERN = '^[^\\u0000\\uD800-\\uDFFF]*$'
const Text = (options: { minLength?: number, maxLength: number }) => Type.String({ ...options, pattern: TEXT_PATTERN })

const Name = Text({ minLength: 1, maxLength: 200 })
const Price = Type.Number({ minimum: 0, maximum: 1_000_000, description: 'price of one seat' })

export const SectionInputSchema = Type.Object({
  name: Name,
  price: Price,
  capacity: Type.Integer({ minimum: 1, maximum: MAX_CAPACITY })
}, { additionalProperties: false })

const HoldSeconds = Type.Integer({ minimum: 1, maximum: MAX_HOLD_SECONDS, description: 'how long a hold keeps its seats; HOLD_TTL_MS when left out' })
const MaxPerUser = Type.Integer({ minimum: 1, maximum: MAX_PER_USER, description: 'most seats one userId may hold plus have confirmed in the event' })

export const EventInputSchema = Type.Object({
  name: Name,
  sections: Type.Array(SectionInputSchema, { minItems: 1, maxItems: MAX_SECTIONS }),
  holdSeconds: Type.Optional(HoldSeconds),
  maxPerUser: Type.Optional(MaxPerUser)
}, { additionalProperties: false })
export type EventInput = Static<typeof EventInputSchema>

export const SectionSchema = Type.Object({
  _id: IdSchema,
  name: Type.String(),
  price: Type.Number(),
  capacity: Type.Integer(),
  remaining: Type.Integer({ description: 'seats on sale now' }),
  held: Type.Integer({ description: 'seats in held bookings (a buyer is paying)' }),
  sold: Type.Integer({ description: 'seats in confirmed bookings; capacity == remaining + held + sold' })
})
export type Section = Static<typeof SectionSchema>

export const EventSchema = Type.Object({
  _id: IdSchema,
  name: Type.String(),
  sections: Type.Array(SectionSchema),
  holdSeconds: Type.Optional(HoldSeconds),
  maxPerUser: Type.Optional(MaxPerUser),
  createdAt: Type.String({ format: 'date-time' })
})
export type Event = Static<typeof EventSchema>

/** A userId, as a token's `sub` is: 1-128 printable ASCII characters. */
const UserId = (description: string) => Type.String({ minLength: 1, maxLength: 128, pattern: '^[\\x21-\\x7E]+$', description })

export const BookingInputSchema = Type.Object({
  eventId: IdSchema,
  sectionId: IdSchema,
  qty: Type.Integer({ minimum: 1, maximum: MAX_QTY }),
  userId: Type.Optional(UserId('who the seats are for: a service or an admin names it; a customer may leave it out (it books as itself)')),
  hold: Type.Optional(Type.Boolean({ description: 'true: the seats are held until expiresAt, then confirmed (POST /api/bookings/{id}/confirm) or returned' }))
}, { additionalProperties: false })

export const BOOKING_STATUSES = ['held', 'confirmed', 'cancelled', 'expired'] as const
export type BookingStatus = typeof BOOKING_STATUSES[number]
export const BookingStatusSchema = Type.Union(BOOKING_STATUSES.map(s => Type.Literal(s)), {
  description: 'held -> confirmed | expired | cancelled; confirmed -> cancelled'
})

const PaymentRef = Type.String({ minLength: 1, maxLength: 200, pattern: '^[\\x20-\\x7E]+$', description: 'the payment provider\'s reference' })

export const ConfirmInputSchema = Type.Object({
  paymentRef: Type.Optional(PaymentRef)
}, { additionalProperties: false })

export const BookingSchema = Type.Object({
  _id: IdSchema,
  eventId: IdSchema,
  sectionId: IdSchema,
  userId: Type.String(),
  qty: Type.Integer(),
  unitPrice: Type.Number(),
  amount: Type.Number(),
  status: BookingStatusSchema,
  createdAt: Type.String({ format: 'date-time' }),
  expiresAt: Type.Optional(Type.String({ format: 'date-time', description: 'a hold\'s end: confirmed before it, or expired' })),
  confirmedAt: Type.Optional(Type.String({ format: 'date-time', description: 'when a hold was confirmed' })),
  paymentRef: Type.Optional(PaymentRef),
  cancelledAt: Type.Optional(Type.String({ format: 'date-time' }))
})
export type Booking = Static<typeof BookingSchema>

export const IdempotencyHeadersSchema = Type.Object({
  'idempotency-key': Type.Optional(Type.String({
    minLength: 1,
    maxLength: 255,
    pattern: '^[\\x20-\\x7E]+$',
    description: 'Retry key: the same key and body return the original booking'
  }))
})

export const PageQuerySchema = Type.Object({
  page: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 1 }),
  limit: Type.Integer({ minimum: 1, maximum: MAX_PAGE_SIZE, default: 20 })
}, { additionalProperties: false })
export type PageQuery = Static<typeof PageQuerySchema>

export const BookingListQuerySchema = Type.Object({
  eventId: Type.Optional(IdSchema),
  sectionId: Type.Optional(IdSchema),
  userId: Type.Optional(UserId('only this user\'s bookings')),
  status: Type.Optional(BookingStatusSchema),
  page: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 1 }),
  limit: Type.Integer({ minimum: 1, maximum: MAX_PAGE_SIZE, default: 20 })
}, { additionalProperties: false })
export type BookingListQuery = Static<typeof BookingListQuerySchema>

export const IdParamsSchema = Type.Object({ id: IdSchema }, { additionalProperties: false })

export interface Page<T> { items: T[], total: number, page: number, limit: number }

export const PageSchema = <T extends TSchema>(item: T) => Type.Object({
  items: Type.Array(item),
  total: Type.Integer(),
  page: Type.Integer(),
  limit: Type.Integer()
})

/** OpenAPI security of the operations that need a principal (plugins/swagger.ts defines the scheme). */
export const BEARER_SECURITY = [{ bearerAuth: [] }]

/** `{ success: true, data }`: the envelope of every successful answer, with the headers it may carry (for OpenAPI). */
export const OkSchema = <T extends TSchema>(data: T, headers?: Record<string, TSchema>) => Type.Object({
  success: Type.Literal(true),
  data
}, headers === undefined ? {} : { headers })

/** `{ success: false, error }`: the envelope of every failed answer. */
export const ErrorEnvelopeSchema = Type.Object({
  success: Type.Literal(false),
  error: Type.Object({
    code: Type.String({ examples: ['SOLD_OUT'] }),
    message: Type.String(),
    field: Type.Optional(Type.String({ description: 'the offending input field, on validation errors' })),
    remaining: Type.Optional(Type.Integer({ description: 'seats left, on SOLD_OUT' })),
    allowed: Type.Optional(Type.Integer({ description: 'seats the user may still take in the event, on LIMIT_EXCEEDED' })),
    status: Type.Optional(Type.String({ description: 'the booking\'s status, on INVALID_STATE' })),
    requested: Type.Optional(Type.Integer()),
    retryAfter: Type.Optional(Type.Integer({ description: 'seconds, on BUSY' })),
    resource: Type.Optional(Type.String()),
    id: Type.Optional(Type.String()),
    dependency: Type.Optional(Type.String({ description: 'the failing dependency, on readiness errors' })),
    checks: Type.Optional(Type.Unknown({ description: 'every dependency check, on readiness errors' }))
  }, { additionalProperties: true })
})

/** 401: the envelope, and the scheme to authenticate with. */
export const UnauthenticatedSchema = Type.Object(ErrorEnvelopeSchema.properties, {
  headers: { 'www-authenticate': Type.String({ description: 'Bearer realm="ticket-booking", with error="invalid_token" when a token was sent' }) }
})

/** 503: the envelope, and when to try again. */
export const RetryLaterSchema = Type.Object(ErrorEnvelopeSchema.properties, {
  headers: { 'retry-after': Type.Integer({ description: 'seconds' }) }
})

/** The principal's rate limit, on every answer of a limited route (only with RATE_LIMIT_MAX). */
export const RATE_LIMIT_HEADERS = {
  'x-ratelimit-limit': Type.Integer({ description: 'requests allowed per window (only with RATE_LIMIT_MAX)' }),
  'x-ratelimit-remaining': Type.Integer({ description: 'requests left in this window' }),
  'x-ratelimit-reset': Type.Integer({ description: 'seconds until the window resets' })
}

/** 429 (only with RATE_LIMIT_MAX): the envelope, when to try again and the principal's limit. */
export const RateLimitedSchema = Type.Object(ErrorEnvelopeSchema.properties, {
  headers: { 'retry-after': Type.Integer({ description: 'seconds' }), ...RATE_LIMIT_HEADERS }
})

/** What a route that reads a JSON body may also answer: too large (413), not JSON (415). */
export const BODY_ERRORS = { 413: ErrorEnvelopeSchema, 415: ErrorEnvelopeSchema }

export const HealthSchema = Type.Object({
  status: Type.Literal('ok'),
  uptime: Type.Number({ description: 'seconds' }),
  store: Type.String(),
  checks: Type.Optional(Type.Record(Type.String(), Type.Object({
    ok: Type.Boolean(),
    latencyMs: Type.Optional(Type.Number()),
    error: Type.Optional(Type.String())
  })))
})
