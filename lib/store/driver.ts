/**
 * What a store adapter supplies: its driver's primitives, nothing decided.
 * lib/store/store.ts builds the Store on top (retries, error classification,
 * the section batch of lib/section-batch.ts), so every adapter decides alike.
 * The adapter's client belongs to whoever opened it, who also closes it.
 */
import type { StoredBooking } from '../allocation.ts'
import type { BookingListQuery, Event, Page, PageQuery } from '../schemas.ts'
import type { SectionTx } from '../section-batch.ts'
import type { DriverErrors } from './store-errors.ts'

export type StoreKind = 'embedded' | 'postgres' | 'mongo'

/** The reads, alike in the driver and the store; `B` is how a booking is shown. */
export interface StoreReads<B> {
  getEvent: (id: string) => Promise<Event | null>
  /** Newest first. */
  listEvents: (query: PageQuery) => Promise<Page<Event>>
  /** The booking stored under an idempotency key, if any (no lock). */
  findByIdempotencyKey: (key: string) => Promise<StoredBooking | null>
  getBooking: (id: string) => Promise<B | null>
  /** Newest first, filtered by the query's fields that are set. */
  listBookings: (query: BookingListQuery) => Promise<Page<B>>
}

export interface StoreDriver extends StoreReads<StoredBooking> {
  readonly kind: StoreKind
  readonly errors: DriverErrors
  /** Creates tables/collections and indexes; idempotent, safe from several instances at once. */
  migrate: () => Promise<void>
  ping: () => Promise<void>
  /** Atomic: the event with all its sections. */
  insertEvent: (event: Event) => Promise<void>
  /** Runs fn in one transaction on one section: committed when fn resolves, rolled back when it throws. */
  inSection: <T>(eventId: string, sectionId: string, fn: (tx: SectionTx) => Promise<T>) => Promise<T>
}
