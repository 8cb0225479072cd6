/**
 * The store port. Every adapter (PostgreSQL, embedded PGlite, MongoDB) passes
 * the same contract suite (test/store-contract.ts).
 */
import type { BookingRequest, Decision, StoredBooking } from '../allocation.ts'
import { roundMoney } from '../allocation.ts'
import { newId } from '../ids.ts'
import type { Booking, BookingListQuery, Event, EventInput, Page, PageQuery } from '../schemas.ts'

export type StoreKind = 'embedded' | 'postgres' | 'mongo'

export interface BatchResult {
  /** one decision per request, in request order; null when the event or section does not exist */
  decisions: Decision[] | null
  /** seats left in the section after the batch committed */
  remaining: number
}

export interface CancelResult {
  booking: Booking
  /** false when the booking was already cancelled (nothing changed) */
  changed: boolean
}

/** Called by adapters so the metrics see what the database did. */
export interface StoreObserver {
  retry?: (operation: string) => void
  error?: (kind: string) => void
}

export interface Store {
  readonly kind: StoreKind
  /** Creates tables/collections and indexes; safe to run any number of times. */
  init: () => Promise<void>
  close: () => Promise<void>
  /** Resolves when the database answers a trivial query. */
  ping: () => Promise<void>

  /** Atomic: the event and all its sections exist, or nothing does. */
  createEvent: (input: EventInput) => Promise<Event>
  getEvent: (id: string) => Promise<Event | null>
  listEvents: (query: PageQuery) => Promise<Page<Event>>

  /**
   * Atomic, one transaction for the whole batch (all requests are for one
   * section): reads the section, decides every request with `allocate`, moves
   * `remaining` down by the total with an update conditional on
   * `remaining >= total`, and inserts all new bookings. Idempotency keys are
   * unique in the database, so a racing duplicate aborts and retries the
   * transaction instead of booking twice. Either every decision takes effect
   * or none does.
   */
  bookBatch: (eventId: string, sectionId: string, requests: readonly BookingRequest[]) => Promise<BatchResult>

  /** The booking stored under an idempotency key, if any (read-only, no lock). */
  findByIdempotencyKey: (key: string) => Promise<StoredBooking | null>
  getBooking: (id: string) => Promise<Booking | null>
  listBookings: (query: BookingListQuery) => Promise<Page<Booking>>

  /**
   * Atomic: marks a confirmed booking cancelled and gives its seats back to the
   * section in one transaction. A second call changes nothing. null if unknown.
   */
  cancelBooking: (id: string) => Promise<CancelResult | null>
}

/** Bounded retries of a transaction that hit a conflict; every adapter uses the same bound. */
export const MAX_TRANSACTION_ATTEMPTS = 5

/** A new event as every store saves it: fresh ids, prices in cents, every section full. */
export function newEvent (input: EventInput): Event {
  return {
    _id: newId(),
    name: input.name,
    createdAt: new Date().toISOString(),
    sections: input.sections.map(s => ({
      _id: newId(), name: s.name, price: roundMoney(s.price), capacity: s.capacity, remaining: s.capacity
    }))
  }
}
