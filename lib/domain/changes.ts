/**
 * The outbox's records: what every change of a booking, an event or a
 * section leaves for the change feed and the webhooks. A record is written by
 * the store in the same write as its change (the section batch's guarded
 * write, the event's transaction), never after it: no change without its
 * record, no record without its change. Pure: every store shares it.
 */
import { publicBooking, type StoredBooking } from './allocation.ts'
import { publicEvent, type StoredEvent } from './sale-rules.ts'
import type { BookingStatus } from '../api/schemas.ts'
import type { ChangeType } from '../api/change-schemas.ts'

export type { ChangeType }

/**
 * A change as its write records it; the store adds its id, its place in the
 * feed and `occurredAt` (the database's clock). `data` is the resource after
 * the change as the API answers it; a section's is filled in by the store
 * from the row it wrote (`section` names it; `data` is then null).
 */
export interface ChangeRecord {
  type: ChangeType
  eventId: string
  /** the event's organizer ('' when none): an organizer reads only its own events' changes */
  owner: string
  data: unknown
  section?: string
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

/** A change as answered and delivered: what a webhook's body and a feed's item hold. */
export function publicChange ({ id, type, occurredAt, eventId, data }: StoredChange): Change {
  return { id, type, occurredAt, eventId, data }
}

const BOOKING_TYPE: Record<BookingStatus, ChangeType> = {
  held: 'booking.held',
  confirmed: 'booking.confirmed',
  cancelled: 'booking.cancelled',
  expired: 'booking.expired'
}

/** A booking as a change left it: held, confirmed (booked outright or its hold paid), cancelled, expired. */
export function bookingRecord (booking: StoredBooking): ChangeRecord {
  return { type: BOOKING_TYPE[booking.status], eventId: booking.eventId, owner: booking.eventOwner ?? '', data: publicBooking(booking) }
}

/** A section changed by its organizer (name, price, capacity): the store fills in the section as written. */
export function sectionRecord (eventId: string, sectionId: string, owner: string): ChangeRecord {
  return { type: 'section.changed', eventId, owner, data: null, section: sectionId }
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
