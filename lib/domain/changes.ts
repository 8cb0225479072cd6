/**
 * The outbox's records: what every change of a booking, an event or a
 * section leaves for the change feed and the webhooks. A record is written by
 * the store in the same write as its change (the section batch's guarded
 * write, the event's transaction), never after it: no change without its
 * record, no record without its change. Pure: every store shares it.
 *
 * A batch's booking changes are recorded compactly: each booking's id and the
 * status the batch left it in, the batch's moment once. The booking as it was
 * then is read back from the booking as it is now (bookingAsOf): a booking's
 * fields are written once and its status only moves forward (held, then
 * confirmed, cancelled or expired; confirmed, then cancelled), so what a later
 * change added is all there is to take away.
 */
import { publicBooking, type StoredBooking } from './allocation.ts'
import { publicEvent, type StoredEvent } from './sale-rules.ts'
import { editsSection } from './section-decision.ts'
import type { SectionEffects } from './section-ops.ts'
import type { Booking, BookingStatus } from '../api/schemas.ts'
import type { ChangeType } from '../api/change-schemas.ts'
import type { WaitEntry } from './waitlist.ts'

export type { ChangeType }

/** An event's change as its transaction records it; the store adds its id, place in the feed and `occurredAt` (the database's clock). */
export interface ChangeRecord {
  type: ChangeType
  eventId: string
  /** the event's organizer ('' when none): an organizer reads only its own events' changes */
  owner: string
  /** the event as the API answers it after the change */
  data: unknown
}

/** What a section batch records of one section: its bookings changed (each once) and whether the section itself changed. */
export interface BatchRecord {
  bookings: Array<{ id: string, status: BookingStatus }>
  /** name, price or capacity changed: a section.changed record, with the section as written */
  section: boolean
  /** waiting-list entries offered seats, as answered after the offer: a waitlist.offered record each */
  offers: WaitEntry[]
}

/** A change as the feed answers it. */
export interface Change {
  id: string
  type: ChangeType
  occurredAt: string
  eventId: string
  data: unknown
}

/** A stored change: with its organizer (access, webhook scopes) and its own place in the feed (a cursor just past it). */
export type StoredChange = Change & { owner: string, cursor: string }

/**
 * What a store holds of one change of the feed: a row (a document) of its
 * own, or one booking of a batch's row with the booking as stored now.
 */
export interface FeedEntry {
  /** the row's number */
  row: string | number
  occurredAt: string
  eventId: string
  owner: string
  cursor: string
  /** a row of its own: its type and data */
  type: ChangeType | null
  data: unknown
  /** a batch's booking: its place (from 1) in the row, the status it reached, the booking now (undefined: not found) */
  booking: { n: number, status: BookingStatus, stored: StoredBooking | undefined } | null
}

/** The change a feed entry is, every store alike: a batch's booking as it was when it reached its status. */
export function feedChange ({ row, occurredAt, eventId, owner, cursor, type, data, booking }: FeedEntry): StoredChange {
  if (booking === null) return { id: `chg_${row}`, type: type as ChangeType, occurredAt, eventId, data, owner, cursor }
  const { n, status, stored } = booking
  return {
    id: `chg_${row}_${n}`,
    type: bookingChangeType(status),
    occurredAt,
    eventId,
    data: stored === undefined ? null : bookingAsOf(stored, status),
    owner,
    cursor
  }
}

/** A change as answered and delivered: what a webhook's body and a feed's item hold. */
export function publicChange ({ id, type, occurredAt, eventId, data }: StoredChange): Change {
  return { id, type, occurredAt, eventId, data }
}

const BOOKING_TYPES: Record<BookingStatus, ChangeType> = {
  held: 'booking.held', confirmed: 'booking.confirmed', cancelled: 'booking.cancelled', expired: 'booking.expired'
}
export const bookingChangeType = (status: BookingStatus): ChangeType => BOOKING_TYPES[status]

/**
 * A batch's bookings as stored: a few bytes each, so a batch's row stays small
 * (inline, uncompressed). `ids`: each booking's own 24 hex digits, one after
 * the other (a booking id is those, then its section's id); `statuses`: one
 * letter each, upper case when the id is the 24 digits alone (a booking from
 * before ids named their section).
 */
export interface PackedBookings { ids: string, statuses: string }

export const STATUS_LETTERS: Record<BookingStatus, string> = { held: 'h', confirmed: 'c', cancelled: 'x', expired: 'e' }
const LETTER_STATUS = new Map(Object.entries(STATUS_LETTERS).map(([status, letter]) => [letter, status as BookingStatus]))
const OWN_ID = 24

export function packBookings (sectionId: string, bookings: ReadonlyArray<{ id: string, status: BookingStatus }>): PackedBookings {
  let ids = ''
  let statuses = ''
  for (const { id, status } of bookings) {
    const named = id.length === OWN_ID + sectionId.length && id.endsWith(sectionId)
    ids += id.slice(0, OWN_ID)
    statuses += named ? STATUS_LETTERS[status] : STATUS_LETTERS[status].toUpperCase()
  }
  return { ids, statuses }
}

/** The `n`th (from 1) booking of a packed batch, and the status it reached. */
export function unpackBooking (sectionId: string, packed: PackedBookings, n: number): { id: string, status: BookingStatus } {
  const letter = packed.statuses[n - 1]
  const own = packed.ids.slice((n - 1) * OWN_ID, n * OWN_ID)
  const lower = letter.toLowerCase()
  return { id: letter === lower ? own + sectionId : own, status: LETTER_STATUS.get(lower) as BookingStatus }
}

/** The records of a section's batch: changed bookings first (expiries, releases, cancels, confirms), then the new ones. */
export function batchRecord (effects: Pick<SectionEffects, 'changes' | 'inserts' | 'capacity' | 'name' | 'price' | 'offers'>): BatchRecord {
  const bookings = effects.changes.map(c => ({ id: c.id, status: c.to }))
  for (const b of effects.inserts) bookings.push({ id: b._id, status: b.status })
  return { bookings, section: editsSection(effects), offers: effects.offers }
}

/** The types a batch record holds, in order (for the metrics). */
export function recordedTypes (record: BatchRecord): ChangeType[] {
  const types = record.bookings.map(b => bookingChangeType(b.status))
  if (record.section) types.push('section.changed')
  for (const _ of record.offers) types.push('waitlist.offered')
  return types
}

/** What each status a booking reached adds to it: taken away again to see it as it was at that status. */
const ADDED_AFTER: Record<BookingStatus, ReadonlyArray<keyof Booking>> = {
  held: ['confirmedAt', 'paymentRef', 'cancelledAt'],
  confirmed: ['cancelledAt'],
  cancelled: [],
  expired: ['confirmedAt', 'paymentRef', 'cancelledAt']
}

/** The booking as the API answered it when it reached `status`, from the booking as stored now. */
export function bookingAsOf (stored: StoredBooking, status: BookingStatus): Booking {
  const booking = publicBooking(stored)
  for (const field of ADDED_AFTER[status]) delete booking[field]
  booking.status = status
  return booking
}

export function eventCreatedRecord (event: StoredEvent, now: number): ChangeRecord {
  return { type: 'event.created', eventId: event._id, owner: event.owner, data: publicEvent(event, now) }
}

const MOVED: Partial<Record<StoredEvent['status'], ChangeType>> = {
  published: 'event.published',
  closed: 'event.closed',
  cancelled: 'event.cancelled'
}

/** The record of an event's change; null when it changed nothing (the same move again, a patch of the same values). */
export function eventChangeRecord (before: StoredEvent, after: StoredEvent, now: number): ChangeRecord | null {
  if (JSON.stringify(before) === JSON.stringify(after)) return null
  const type = before.status !== after.status ? MOVED[after.status] ?? 'event.updated' : 'event.updated'
  return { type, eventId: after._id, owner: after.owner, data: publicEvent(after, now) }
}
