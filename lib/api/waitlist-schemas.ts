/**
 * The waiting list's API shapes (TypeBox): the source of its validation, its
 * serialization and its part of the OpenAPI document.
 */
import { Type, type Static } from '@sinclair/typebox'
import { EXAMPLE_IDS, EXAMPLE_USER, EventIdSchema, ID_PATTERN, MAX_PAGE_SIZE, MAX_QTY, SectionIdSchema, ref, stringEnum } from './schemas.ts'

/**
 * waiting: in line; offered: seats held for it (bookingId) until the hold ends; confirmed: it paid the
 * offer; lapsed: the offer ran out; skipped: an offer would have passed the event's maxPerUser; left: it
 * left the list (or declined its offer).
 */
export const WAIT_STATUSES = ['waiting', 'offered', 'confirmed', 'lapsed', 'skipped', 'left'] as const
export type WaitStatus = typeof WAIT_STATUSES[number]

export const WaitEntryIdSchema = Type.String({ pattern: ID_PATTERN, description: 'a waiting-list entry\'s id (24 lowercase hex digits)', examples: [EXAMPLE_IDS.entry] })

export const WaitEntrySchema = Type.Object({
  _id: WaitEntryIdSchema,
  eventId: EventIdSchema,
  sectionId: SectionIdSchema,
  userId: Type.String({ description: 'who waits', examples: [EXAMPLE_USER] }),
  qty: Type.Integer({ description: 'seats it waits for: offered all together or not at all', examples: [2] }),
  position: Type.Integer({ description: 'its place in the section\'s list, fixed when it joined (from 1)', examples: [1] }),
  status: stringEnum(WAIT_STATUSES, { description: 'waiting -> offered -> confirmed | lapsed | left; waiting -> skipped | left', examples: ['waiting'] }),
  bookingId: Type.Optional(Type.String({ description: 'the hold offered to it (confirm it as any hold: POST /api/bookings/{id}/confirm)', examples: [EXAMPLE_IDS.booking] })),
  createdAt: Type.String({ format: 'date-time', description: 'when it joined', examples: ['2026-06-01T19:30:00.000Z'] })
}, { $id: 'WaitlistEntry', description: 'A place on a section\'s waiting list' })
export type WaitEntry = Static<typeof WaitEntrySchema>

export const WaitlistJoinSchema = Type.Object({
  sectionId: SectionIdSchema,
  qty: Type.Integer({ minimum: 1, maximum: MAX_QTY, description: 'seats to wait for', examples: [2] }),
  userId: Type.Optional(Type.String({
    minLength: 1,
    maxLength: 128,
    pattern: '^[\\x21-\\x7E]+$',
    description: 'who waits: a service or an admin names it; a customer may leave it out (it waits as itself)',
    examples: [EXAMPLE_USER]
  }))
}, { $id: 'WaitlistJoin', additionalProperties: false, description: 'A place on a section\'s waiting list, asked for when the section cannot serve qty now' })
export type WaitlistJoin = Static<typeof WaitlistJoinSchema>

/** A place in a waiting list's order: its section, then its position. */
export const WAITLIST_CURSOR_PATTERN = '^[0-9a-f]{24}\\.[0-9]{1,9}$'

export const WaitlistQuerySchema = Type.Object({
  sectionId: Type.Optional(SectionIdSchema),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_PAGE_SIZE, default: MAX_PAGE_SIZE, description: 'entries per page' })),
  cursor: Type.Optional(Type.String({ pattern: WAITLIST_CURSOR_PATTERN, description: 'the `nextCursor` of the page before', examples: [`${EXAMPLE_IDS.section}.20`] }))
}, { additionalProperties: false })
export type WaitlistQueryAsk = Static<typeof WaitlistQuerySchema>

export const WaitlistPageSchema = Type.Object({
  items: Type.Array(ref(WaitEntrySchema)),
  nextCursor: Type.Union([Type.String({ pattern: WAITLIST_CURSOR_PATTERN }), Type.Null()], {
    description: 'the `cursor` of the next page, on a full page; null on a page with fewer than `limit`',
    examples: [null]
  })
}, { $id: 'WaitlistPage', description: 'Waiting-list entries by section, in position order (served ones stay listed)' })

export const WaitEntryParamsSchema = Type.Object({ id: WaitEntryIdSchema }, { additionalProperties: false })

/** The named schemas of this file, each after those it references. */
export const WAITLIST_SCHEMAS = [WaitEntrySchema, WaitlistJoinSchema, WaitlistPageSchema]
