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

/**
 * Every id is a 24-digit ObjectId in lowercase hex, whatever the store; a
 * booking's is followed by its section's (lib/domain/ids.ts). One rule on
 * every route and store: an id in any other case is malformed (400), never
 * found on one store and not on another.
 */
export const ID_PATTERN = '^[0-9a-f]{24}$'
/** A booking's id: 48 lowercase hex digits (24 for one made before booking ids named their section). */
export const BOOKING_ID_PATTERN = '^[0-9a-f]{24}([0-9a-f]{24})?$'

/** Example ids of the document: one per kind, so an example never mixes an event's id with a section's. */
export const EXAMPLE_IDS = {
  event: '6650a1f2c3d4e5f6a7b8c9d0',
  section: '6650a1f2c3d4e5f6a7b8c9d1',
  booking: '6650b7e4a1b2c3d4e5f6a7b86650a1f2c3d4e5f6a7b8c9d1',
  entry: '6650c2d3e4f5a6b7c8d9e0f1'
} as const
export const EXAMPLE_USER = 'bob'

const idOf = (kind: keyof typeof EXAMPLE_IDS, description: string, pattern = ID_PATTERN) =>
  Type.String({ pattern, description, examples: [EXAMPLE_IDS[kind]] })
export const EventIdSchema = idOf('event', 'an event\'s id (24 lowercase hex digits)')
export const SectionIdSchema = idOf('section', 'a section\'s id (24 lowercase hex digits)')
export const BookingIdSchema = idOf('booking', 'a booking\'s id (48 lowercase hex digits: its own 24, then its section\'s; 24 for a booking made before)', BOOKING_ID_PATTERN)

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

const Capacity = Type.Integer({ minimum: 1, maximum: MAX_CAPACITY, description: 'seats on sale, held and sold: capacity == remaining + held + sold', examples: [5] })

export const SectionInputSchema = Type.Object({
  name: Name('VIP'),
  price: Price,
  capacity: Capacity
}, { $id: 'SectionInput', additionalProperties: false, description: 'A section of a new event' })
export type SectionInput = Static<typeof SectionInputSchema>

export const SectionPatchSchema = Type.Object({
  name: Type.Optional(Name('VIP')),
  price: Type.Optional(Type.Number({ ...Price, description: 'price of one seat for bookings made from now on; a booking keeps its unitPrice' })),
  capacity: Type.Optional(Type.Integer({ ...Capacity, description: 'seats in all: raised, the new seats are on sale at once; never below held + sold (409 CAPACITY_BELOW_TAKEN)' }))
}, { $id: 'SectionPatch', additionalProperties: false, minProperties: 1, description: 'What changes in a section: any of its name, price, capacity' })
export type SectionPatch = Static<typeof SectionPatchSchema>

const HoldSeconds = Type.Integer({ minimum: 1, maximum: MAX_HOLD_SECONDS, description: 'how long a hold keeps its seats; HOLD_TTL_MS when left out', examples: [600] })
const MaxPerUser = Type.Integer({ minimum: 1, maximum: MAX_PER_USER, description: 'most seats one userId may hold plus have confirmed in the event', examples: [4] })
const WaitlistOfferSeconds = Type.Integer({
  minimum: 1,
  maximum: MAX_HOLD_SECONDS,
  description: 'how long a waiting-list offer (a hold for the next in line) keeps its seats; WAITLIST_OFFER_SECONDS when left out',
  examples: [3600]
})

/**
 * draft: seen by its owner and admins only, no bookings; published: on sale
 * within its window; closed: no more sales; cancelled: called off, holds released.
 */
export const EVENT_STATUSES = ['draft', 'published', 'closed', 'cancelled'] as const
export type EventStatus = typeof EVENT_STATUSES[number]
/** What a buyer can be told of the sale now (derived: status, window, remaining seats). */
export const SALE_STATES = ['draft', 'not_open', 'on_sale', 'sold_out', 'ended', 'closed', 'cancelled'] as const
export type SaleState = typeof SALE_STATES[number]

/** The event's own fields a create sets and a PATCH changes. */
const eventDetails = {
  description: Type.Optional(Text({ maxLength: 5000, examples: ['The spring tour\'s opening night'] })),
  venue: Type.Optional(Text({ minLength: 1, maxLength: 200, examples: ['Arena, Hall 1'] })),
  startsAt: Type.Optional(Timestamp('when the event begins')),
  endsAt: Type.Optional(Timestamp('when the event ends: after startsAt')),
  salesStart: Type.Optional(Timestamp('bookings and holds are taken from this moment (the database\'s clock); on sale at once when left out')),
  salesEnd: Type.Optional(Timestamp('no bookings or holds from this moment on: after salesStart')),
  holdSeconds: Type.Optional(HoldSeconds),
  maxPerUser: Type.Optional(MaxPerUser),
  waitlistOfferSeconds: Type.Optional(WaitlistOfferSeconds)
}

export const EventInputSchema = Type.Object({
  name: Name('Concert'),
  sections: Type.Array(ref(SectionInputSchema), { minItems: 1, maxItems: MAX_SECTIONS }),
  ...eventDetails,
  status: Type.Optional(stringEnum(['draft', 'published'] as const, { description: 'draft: hidden and not on sale until published; published (the default): on sale within its window' }))
}, { $id: 'EventInput', additionalProperties: false, description: 'A new event: its sections, and optionally its details, sale window, hold length and per-user cap' })
export type EventInput = Static<typeof EventInputSchema>

/** A field a PATCH clears with null (the sale window's ends; the event then has none). */
const Clearable = <T extends TSchema>(schema: T) => Type.Optional(Type.Union([schema, Type.Null()]))
export const EventPatchSchema = Type.Object({
  name: Type.Optional(Name('Concert')),
  description: Clearable(Text({ maxLength: 5000 })),
  venue: Clearable(Text({ minLength: 1, maxLength: 200 })),
  startsAt: Clearable(Timestamp('when the event begins')),
  endsAt: Clearable(Timestamp('when the event ends: after startsAt')),
  salesStart: Clearable(Timestamp('bookings are taken from this moment; null: on sale at once')),
  salesEnd: Clearable(Timestamp('no bookings from this moment on; null: no end')),
  holdSeconds: Clearable(HoldSeconds),
  maxPerUser: Clearable(MaxPerUser),
  waitlistOfferSeconds: Clearable(WaitlistOfferSeconds)
}, { $id: 'EventPatch', additionalProperties: false, minProperties: 1, description: 'What changes in an event (its sections have routes of their own); null clears a field' })
export type EventPatch = Static<typeof EventPatchSchema>

export const SectionSchema = Type.Object({
  _id: SectionIdSchema,
  name: Type.String({ examples: ['VIP'] }),
  price: Price,
  capacity: Type.Integer({ examples: [5] }),
  remaining: Type.Integer({ description: 'seats on sale now', examples: [2] }),
  held: Type.Integer({ description: 'seats in held bookings (a buyer is paying)', examples: [1] }),
  sold: Type.Integer({ description: 'seats in confirmed bookings; capacity == remaining + held + sold', examples: [2] }),
  waiting: Type.Integer({ description: 'entries of its waiting list waiting for seats (POST /api/events/{id}/waitlist)', examples: [0] })
}, { $id: 'Section', description: 'A section of an event, with its live availability' })
export type Section = Static<typeof SectionSchema>

export const EventSchema = Type.Object({
  _id: EventIdSchema,
  name: Type.String({ examples: ['Concert'] }),
  sections: Type.Array(ref(SectionSchema)),
  description: Type.Optional(Type.String()),
  venue: Type.Optional(Type.String({ examples: ['Arena, Hall 1'] })),
  startsAt: Type.Optional(Timestamp('when the event begins')),
  endsAt: Type.Optional(Timestamp('when the event ends')),
  salesStart: Type.Optional(Timestamp('bookings are taken from this moment')),
  salesEnd: Type.Optional(Timestamp('no bookings from this moment on')),
  holdSeconds: Type.Optional(HoldSeconds),
  maxPerUser: Type.Optional(MaxPerUser),
  waitlistOfferSeconds: Type.Optional(WaitlistOfferSeconds),
  status: stringEnum(EVENT_STATUSES, { description: 'draft -> published -> closed; any but cancelled -> cancelled', examples: ['published'] }),
  saleState: stringEnum(SALE_STATES, { description: 'the sale as a buyer sees it now (this instance\'s clock; bookings are decided by the database\'s)', examples: ['on_sale'] }),
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
  cancelledAt: Type.Optional(Timestamp('when it was cancelled (or its hold released)')),
  waitlistId: Type.Optional(Type.String({ pattern: ID_PATTERN, description: 'the waiting-list entry this hold was offered to', examples: [EXAMPLE_IDS.entry] }))
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

/** A cursor as clients see it: opaque base64url text (lib/domain/list-cursor.ts makes and reads it). */
export const CURSOR_PATTERN = '^[A-Za-z0-9_-]+$'

const PageFields = {
  // no default: a page left out must be told from one sent, which `cursor` excludes (pageQuery fills in 1)
  page: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_PAGE, description: 'page number, from 1 (1 when left out); not with `cursor`' })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_PAGE_SIZE, default: DEFAULT_PAGE_SIZE, description: 'items per page' })),
  cursor: Type.Optional(Type.String({
    minLength: 1,
    maxLength: 200,
    pattern: CURSOR_PATTERN,
    description: 'the `nextCursor` of the page before: the items after its last one, however many were added since; not with `page`',
    examples: ['WyIyMDI2LTA2LTAxVDE5OjMwOjAwLjAwMFoiLCI2NjUwYTFmMmMzZDRlNWY2YTdiOGM5ZDAiXQ']
  }))
}

/** page, limit and cursor: each may be left out (validation fills in limit's default). */
export const PageQuerySchema = Type.Object(PageFields, { additionalProperties: false })
export type PageAsk = Static<typeof PageQuerySchema>

/** Where a cursor's page starts: after the item of this createdAt and id, in the lists' order (newest first). */
export interface ListPosition { createdAt: string, id: string }

/** A page as the stores read it: by number, or (page 1) the items after a cursor's position. */
export interface PageQuery { page: number, limit: number, after?: ListPosition }

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
export type BookingListQuery = Omit<BookingListAsk, 'page' | 'limit' | 'cursor'> & PageQuery

export const EventIdParamsSchema = Type.Object({ id: EventIdSchema }, { additionalProperties: false })
export const SectionParamsSchema = Type.Object({ id: EventIdSchema, sectionId: SectionIdSchema }, { additionalProperties: false })
export const BookingIdParamsSchema = Type.Object({ id: BookingIdSchema }, { additionalProperties: false })

export interface Page<T> { items: T[], total: number, page: number, limit: number, nextCursor: string | null }

const pageOf = <T extends TSchema>(item: T, name: string) => Type.Object({
  items: Type.Array(ref(item)),
  total: Type.Integer({ description: `${name} matching the query, on every page (cursor pages too)`, examples: [1] }),
  page: Type.Integer({ description: 'the page number asked for; 1 on a page asked for by `cursor` (a cursor\'s page has no number)', examples: [1] }),
  limit: Type.Integer({ examples: [DEFAULT_PAGE_SIZE] }),
  nextCursor: Type.Union([Type.String({ pattern: CURSOR_PATTERN }), Type.Null()], {
    description: `the \`cursor\` of the next page, on a full page (there may be more ${name}); null on a page with fewer than \`limit\`. ` +
      'Given on numbered pages too: a client may switch to cursors after the first page',
    examples: [null]
  })
}, { $id: `${item.$id}Page`, description: `A page of ${name}, newest first` })

export const EventPageSchema = pageOf(EventSchema, 'events')
export const BookingPageSchema = pageOf(BookingSchema, 'bookings')

/** The named schemas, in an order where each comes after those it references. */
export const NAMED_SCHEMAS: TSchema[] = [
  SectionInputSchema, SectionPatchSchema, EventInputSchema, EventPatchSchema, SectionSchema, EventSchema, EventPageSchema,
  BookingInputSchema, ConfirmInputSchema, BookingSchema, BookingPageSchema
]
