/**
 * The operations a section's batch decides, and what deciding them yields:
 * the types every layer shares (the batcher queues SectionOps, the store
 * runs them, lib/domain/section-decision.ts decides them).
 */
import type { BookingAccess, Parties } from './access.ts'
import type { BookingRequest, Decision, StoredBooking } from './allocation.ts'
import type { Booking, BookingStatus, SectionPatch } from '../api/schemas.ts'
import type { SaleWindow } from './sale-rules.ts'
import type { EntryChange, StoredEntry, WaitEntry } from './waitlist.ts'

/** A section of an event: what a batch, a lock and a queue are keyed by. */
export interface SectionRef {
  eventId: string
  sectionId: string
}

export type SectionOp =
  | { kind: 'book', request: BookingRequest }
  /** a held booking becomes confirmed, with the payment's reference */
  | { kind: 'confirm', bookingId: string, access: Access, paymentRef?: string, seen?: StoredBooking }
  /** a held booking is released, a confirmed one cancelled: its seats go back */
  | { kind: 'cancel', bookingId: string, access: Access, seen?: StoredBooking }
  /** nothing but what every batch does first: expire the section's due holds (the sweeper sends it) */
  | { kind: 'expire' }
  /** the section's name, price or capacity changed, if `mayEdit` its event's owner (decided on the section as the batch reads it) */
  | { kind: 'edit', change: SectionPatch, mayEdit: (owner: string) => boolean }
  /** every hold of the section released, if its event is cancelled (sent once the event is) */
  | { kind: 'release_holds' }
  /** a place on the section's waiting list for `userId`, if the section cannot serve `qty` once the batch is decided */
  | { kind: 'join', userId: string, qty: number }
  /** the entry leaves the list; an offered one declines its offer (its hold, `bookingId` as read, is released) */
  | { kind: 'leave', entryId: string, bookingId?: string }

/** What the principal asking may do to the booking it names, decided on the booking as the batch reads it. */
export type Access = (booking: Parties) => BookingAccess

export type OpResult =
  | Decision
  /** `from`: the status it was cancelled from; changed false when there was nothing to give back */
  | { kind: 'cancelled', booking: Booking, changed: boolean, from: BookingStatus }
  | { kind: 'hold_confirmed', booking: Booking, changed: boolean }
  | { kind: 'hold_expired', booking: Booking }
  | { kind: 'invalid_state', booking: Booking }
  | { kind: 'swept' }
  | { kind: 'edited' }
  /** capacity may not go below `minimum`, the seats held and sold */
  | { kind: 'capacity_below_taken', minimum: number }
  /** created false: the user's entry still waiting or offered, answered again */
  | { kind: 'joined', entry: WaitEntry, created: boolean }
  /** the section can serve the qty a user asked to wait for: book instead */
  | { kind: 'seats_available', remaining: number }
  /** changed false: it had left the list already, or been served */
  | { kind: 'left', entry: WaitEntry, changed: boolean }
  /** the entry was offered seats since it was read: leave again, naming its hold */
  | { kind: 'stale' }
  /** the principal may see the booking but not do this to it */
  | { kind: 'forbidden' }
  | { kind: 'not_found' }

export interface SectionState {
  remaining: number
  capacity: number
  price: number
  /** the event's status and sale window: whether the batch's moment takes bookings */
  sale: SaleWindow
  /** the event's organizer, stamped on its bookings for access checks ('' when none) */
  owner: string
  /** the event's hold length in seconds; null: HOLD_TTL_MS */
  holdSeconds: number | null
  /** the event's cap of seats per user; null: none */
  maxPerUser: number | null
  /** no later than the earliest expiresAt of the section's holds; null when it has none */
  nextExpiry: Date | null
  /** entries of its waiting list waiting */
  waiting: number
  /** the event's waiting-list offer length in seconds; null: WAITLIST_OFFER_SECONDS */
  offerSeconds: number | null
  /** the database's clock, read with the lock: the one moment the batch is decided at */
  now: Date
}

/**
 * A stored booking moving from one status to another, applied only if it
 * still has `from`: one per booking and batch (a hold confirmed and then
 * cancelled in one batch is one change from held to cancelled that confirms).
 */
export interface BookingChange {
  id: string
  from: BookingStatus
  to: BookingStatus
  /** the batch confirms the hold (confirmedAt, paymentRef), guarded by its expiresAt being after the batch's moment */
  confirms: boolean
  paymentRef?: string
}

/** What one batch changes, applied in one guarded write. */
export interface SectionEffects {
  /** changes of the section's counters: remaining + held + sold stays capacity (capacity changed by `capacity`) */
  remaining: number
  capacity: number
  /** the section's new name and price, when an edit set them */
  name?: string
  price?: number
  held: number
  sold: number
  inserts: StoredBooking[]
  changes: BookingChange[]
  /** the change of the section's count of waiting entries */
  waiting: number
  /** entries joined, and entries moved (offered, served, skipped, left) */
  waitlist: { inserts: StoredEntry[], changes: EntryChange[] }
  /** the entries offered seats, as answered after the offer: each recorded as waitlist.offered */
  offers: WaitEntry[]
  /** seats each user gains (or gives back) in the event, in userId order: the lock order of their rows */
  userSeats: Array<{ userId: string, delta: number }>
  /** the cap the users' new totals are guarded by; null when the event has none */
  maxPerUser: number | null
  /** the section's next expiry: replaced when `replace` (its due holds were read), else the earlier of the two */
  nextExpiry: { replace: boolean, at: Date | null }
  /** the batch's moment: createdAt of the inserts, confirmedAt/cancelledAt of the changes */
  at: Date
}

/** A hold the batch found past its expiresAt: expired, its seats back on sale. */
export interface ExpiredHold {
  qty: number
  expiresAt: string
}
