/**
 * What a store adapter supplies: its driver's primitives, nothing decided.
 * lib/store/store.ts builds the Store on top (retries, error classification,
 * the section batch of lib/section-batch.ts), so every adapter decides alike.
 * The adapter's client belongs to whoever opened it, who also closes it.
 */
import type { StoredBooking } from '../allocation.ts'
import type { BookingListQuery, Event, Page, PageQuery } from '../schemas.ts'
import type { SectionTx } from '../section-batch.ts'
import type { SectionRef } from '../section-batcher.ts'
import type { DriverErrors } from './store-errors.ts'

export type StoreKind = 'embedded' | 'postgres' | 'mongo'

/** A bookings list query, with what access control adds: only the bookings of one organizer's events. */
export type BookingFilter = BookingListQuery & { eventOwner?: string }

/** The reads, alike in the driver and the store. */
export interface StoreReads {
  getEvent: (id: string) => Promise<Event | null>
  /** Newest first. */
  listEvents: (query: PageQuery) => Promise<Page<Event>>
  /** The booking stored under an (already scoped) idempotency key, if any (no lock). */
  findByIdempotencyKey: (key: string) => Promise<StoredBooking | null>
  getBooking: (id: string) => Promise<StoredBooking | null>
  /** Newest first, filtered by the fields that are set. */
  listBookings: (filter: BookingFilter) => Promise<Page<StoredBooking>>
}

export interface StoreDriver extends StoreReads {
  readonly kind: StoreKind
  readonly errors: DriverErrors
  /** Creates tables/collections and indexes; idempotent, safe from several instances at once. */
  migrate: () => Promise<void>
  ping: () => Promise<void>
  /** Atomic: the event with all its sections, owned by `ownerId` (an organizer's sub). */
  insertEvent: (event: Event, ownerId: string) => Promise<void>
  /** Sections with holds past their expiresAt (on the database's clock), most overdue first. */
  dueSections: (limit: number) => Promise<SectionRef[]>
  /** Runs fn in one transaction on one section: committed when fn resolves, rolled back when it throws. */
  inSection: <T>(eventId: string, sectionId: string, fn: (tx: SectionTx) => Promise<T>) => Promise<T>
}
