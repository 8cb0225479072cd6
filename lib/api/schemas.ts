/**
 * TypeBox schemas shared by the routes (validation, serialization) and the
 * OpenAPI document, and the domain types derived from them. The named ones
 * (with an `$id`) are registered once (plugins/schemas.ts) and referenced with
 * ref(), so the document has them as components and a generated client as types.
 */
import { Type, type Static, type TSchema, type TUnsafe } from '@sinclair/typebox'

/** A reference to a named schema, typed as the schema itself (TypeBox 0.34's Ref is untyped). */
export function ref<T extends TSchema> (schema: T): TUnsafe<Static<T>> {
  if (schema.$id === undefined) throw new Error('ref() needs a schema with an $id')
  return Type.Unsafe<Static<T>>(Type.Ref(schema.$id))
}

/** A string that is one of `values`: one `enum` in the document (a TypeBox union of literals would be an anyOf). */
export function stringEnum<const T extends readonly string[]> (values: T, options: Record<string, unknown> = {}): TUnsafe<T[number]> {
  return Type.Unsafe<T[number]>({ ...options, type: 'string', enum: [...values] })
}

/** Every id is a 24-hex-digit ObjectId string, whatever the store; a booking's is followed by its section's (lib/domain/ids.ts). */
export const ID_PATTERN = '^[0-9a-fA-F]{24}$'
/** A booking's id: 48 hex digits (24 for one made before booking ids named their section). */
export const BOOKING_ID_PATTERN = '^[0-9a-fA-F]{24}([0-9a-fA-F]{24})?$'

/** Example ids of the document: one per kind, so an example never mixes an event's id with a section's. */
export const EXAMPLE_IDS = {
  event: '6650a1f2c3d4e5f6a7b8c9d0',
  section: '6650a1f2c3d4e5f6a7b8c9d1',
  booking: '6650b7e4a1b2c3d4e5f6a7b86650a1f2c3d4e5f6a7b8c9d1'
} as const
export const EXAMPLE_USER = 'bob'

const idOf = (kind: keyof typeof EXAMPLE_IDS, description: string, pattern = ID_PATTERN) =>
  Type.String({ pattern, description, examples: [EXAMPLE_IDS[kind]] })
export const EventIdSchema = idOf('event', 'an event\'s id (24 hex digits)')
export const SectionIdSchema = idOf('section', 'a section\'s id (24 hex digits)')
export const BookingIdSchema = idOf('booking', 'a booking\'s id (48 hex digits: its own 24, then its section\'s; 24 for a booking made before)', BOOKING_ID_PATTERN)

export const MAX_QTY = 10
export const MAX_SECTIONS = 100
export const MAX_CAPACITY = 1_000_000
export const MAX_PAGE_SIZE = 100
export const DEFAULT_PAGE_SIZE = 20
export const MAX_PAGE = 1_000_000
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
const Text = (options: { minLength?: number, maxLength: number, examples?: string[] }) => Type.String({ ...options, pattern: TEXT_PATTERN })

const Name = (example: string) => Text({ minLength: 1, maxLength: 200, examples: [example] })
const Price = Type.Number({ minimum: 0, maximum: 1_000_000, description: 'price of one seat', examples: [150] })
const Timestamp = (description: string) => Type.String({ format: 'date-time', description, examples: ['2026-06-01T19:30:00.000Z'] })

export const SectionInputSchema = Type.Object({
  name: Name('VIP'),
  price: Price,
  capacity: Type.Integer({ minimum: 1, maximum: MAX_CAPACITY, description: 'seats on sale', examples: [5] })
}, { $id: 'SectionInput', additionalProperties: false, description: 'A section of a new event' })

const HoldSeconds = Type.Integer({ minimum: 1, maximum: MAX_HOLD_SECONDS, description: 'how long a hold keeps its seats; HOLD_TTL_MS when left out', examples: [600] })
const MaxPerUser = Type.Integer({ minimum: 1, maximum: MAX_PER_USER, description: 'most seats one userId may hold plus have confirmed in the event', examples: [4] })

export const EventInputSchema = Type.Object({
  name: Name('Concert'),
  sections: Type.Array(ref(SectionInputSchema), { minItems: 1, maxItems: MAX_SECTIONS }),
  holdSeconds: Type.Optional(HoldSeconds),
  maxPerUser: Type.Optional(MaxPerUser)
}, { $id: 'EventInput', additionalProperties: false, description: 'A new event: its sections, and optionally its hold length and per-user cap' })
export type EventInput = Static<typeof EventInputSchema>

export const SectionSchema = Type.Object({
  _id: SectionIdSchema,
  name: Type.String({ examples: ['VIP'] }),
  price: Price,
  capacity: Type.Integer({ examples: [5] }),
  remaining: Type.Integer({ description: 'seats on sale now', examples: [2] }),
  held: Type.Integer({ description: 'seats in held bookings (a buyer is paying)', examples: [1] }),
  sold: Type.Integer({ description: 'seats in confirmed bookings; capacity == remaining + held + sold', examples: [2] })
}, { $id: 'Section', description: 'A section of an event, with its live availability' })
export type Section = Static<typeof SectionSchema>

export const EventSchema = Type.Object({
  _id: EventIdSchema,
  name: Type.String({ examples: ['Concert'] }),
  sections: Type.Array(ref(SectionSchema)),
  holdSeconds: Type.Optional(HoldSeconds),
  maxPerUser: Type.Optional(MaxPerUser),
  createdAt: Timestamp('when the event was created')
}, { $id: 'Event', description: 'An event and its sections' })
export type Event = Static<typeof EventSchema>

/** A userId, as a token's `sub` is: 1-128 printable ASCII characters. */
const UserId = (description: string) => Type.String({ minLength: 1, maxLength: 128, pattern: '^[\\x21-\\x7E]+$', description, examples: [EXAMPLE_USER] })

export const BookingInputSchema = Type.Object({
  eventId: EventIdSchema,
  sectionId: SectionIdSchema,
  qty: Type.Integer({ minimum: 1, maximum: MAX_QTY, description: 'seats to book', examples: [2] }),
  userId: Type.Optional(UserId('who the seats are for: a service or an admin names it; a customer may leave it out (it books as itself)')),
  hold: Type.Optional(Type.Boolean({ description: 'true: the seats are held until expiresAt, then confirmed (POST /api/bookings/{id}/confirm) or returned' }))
}, { $id: 'BookingInput', additionalProperties: false, description: 'Seats of one section to book or hold' })

export const BOOKING_STATUSES = ['held', 'confirmed', 'cancelled', 'expired'] as const
export type BookingStatus = typeof BOOKING_STATUSES[number]
export const BookingStatusSchema = stringEnum(BOOKING_STATUSES, {
  description: 'held -> confirmed | expired | cancelled; confirmed -> cancelled',
  examples: ['confirmed']
})

const PaymentRef = Type.String({ minLength: 1, maxLength: 200, pattern: '^[\\x20-\\x7E]+$', description: 'the payment provider\'s reference', examples: ['pi_3PqX2aLkdIwHu7ix0bK9'] })

export const ConfirmInputSchema = Type.Object({
  paymentRef: Type.Optional(PaymentRef)
}, { $id: 'ConfirmInput', additionalProperties: false, description: 'The payment of a hold (the body may be left out)' })

export const BookingSchema = Type.Object({
  _id: BookingIdSchema,
  eventId: EventIdSchema,
  sectionId: SectionIdSchema,
  userId: Type.String({ description: 'who the seats are for', examples: [EXAMPLE_USER] }),
  qty: Type.Integer({ examples: [2] }),
  unitPrice: Type.Number({ examples: [150] }),
  amount: Type.Number({ description: 'unitPrice × qty, fixed at booking time', examples: [300] }),
  status: BookingStatusSchema,
  createdAt: Timestamp('when the booking was made'),
  expiresAt: Type.Optional(Timestamp('a hold\'s end: confirmed before it, or expired')),
  confirmedAt: Type.Optional(Timestamp('when a hold was confirmed')),
  paymentRef: Type.Optional(PaymentRef),
  cancelledAt: Type.Optional(Timestamp('when it was cancelled (or its hold released)'))
}, { $id: 'Booking', description: 'Seats of one section for one user' })
export type Booking = Static<typeof BookingSchema>

export const IdempotencyHeadersSchema = Type.Object({
  'idempotency-key': Type.Optional(Type.String({
    minLength: 1,
    maxLength: 255,
    pattern: '^[\\x20-\\x7E]+$',
    description: 'Retry key: the same key and body from the same principal return the original booking',
    examples: ['order-42']
  }))
})

const PageFields = {
  page: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_PAGE, default: 1, description: 'page number, from 1' })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_PAGE_SIZE, default: DEFAULT_PAGE_SIZE, description: 'items per page' }))
}

/** page and limit: both may be left out (validation fills in their defaults). */
export const PageQuerySchema = Type.Object(PageFields, { additionalProperties: false })
export type PageAsk = Static<typeof PageQuerySchema>

/** A page as the stores read it. */
export interface PageQuery { page: number, limit: number }

/** The page asked for, defaults filled in (validation already does; this is for the types and for callers outside HTTP). */
export function pageQuery (ask: PageAsk): PageQuery {
  return { page: ask.page ?? 1, limit: ask.limit ?? DEFAULT_PAGE_SIZE }
}

export const BookingListQuerySchema = Type.Object({
  eventId: Type.Optional(EventIdSchema),
  sectionId: Type.Optional(SectionIdSchema),
  userId: Type.Optional(UserId('only this user\'s bookings')),
  status: Type.Optional(BookingStatusSchema),
  ...PageFields
}, { additionalProperties: false })
export type BookingListAsk = Static<typeof BookingListQuerySchema>
export type BookingListQuery = Omit<BookingListAsk, 'page' | 'limit'> & PageQuery

export const EventIdParamsSchema = Type.Object({ id: EventIdSchema }, { additionalProperties: false })
export const BookingIdParamsSchema = Type.Object({ id: BookingIdSchema }, { additionalProperties: false })

export interface Page<T> { items: T[], total: number, page: number, limit: number }

const pageOf = <T extends TSchema>(item: T, name: string) => Type.Object({
  items: Type.Array(ref(item)),
  total: Type.Integer({ description: `${name} matching the query, on every page`, examples: [1] }),
  page: Type.Integer({ examples: [1] }),
  limit: Type.Integer({ examples: [DEFAULT_PAGE_SIZE] })
}, { $id: `${item.$id}Page`, description: `A page of ${name}, newest first` })

export const EventPageSchema = pageOf(EventSchema, 'events')
export const BookingPageSchema = pageOf(BookingSchema, 'bookings')

/** The named schemas, in an order where each comes after those it references. */
export const NAMED_SCHEMAS: TSchema[] = [
  SectionInputSchema, EventInputSchema, SectionSchema, EventSchema, EventPageSchema,
  BookingInputSchema, ConfirmInputSchema, BookingSchema, BookingPageSchema
]
