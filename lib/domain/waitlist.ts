/**
 * The waiting list's entries and how they move: pure, shared by every store.
 * Entries are decided in their section's batch (lib/domain/section-decision.ts),
 * by the same guarded write as its seats: seats that come back are offered to
 * the first waiting entries they fit, in position order, before any public
 * booking is decided, and an entry joins only when the section cannot serve it.
 * So after every batch no waiting entry fits in what remains: a public booking
 * never takes seats an entry waits for.
 */
import type { BookingStatus } from '../api/schemas.ts'
import type { WaitEntry, WaitStatus } from '../api/waitlist-schemas.ts'

export type { WaitEntry, WaitStatus }

/** An entry as stored: with its event's organizer (who may see it). */
export interface StoredEntry extends WaitEntry {
  eventOwner: string
}

/** An entry moving from one status to another, applied only if it still has `from`; `bookingId` set by an offer. */
export interface EntryChange {
  id: string
  from: WaitStatus
  to: WaitStatus
  bookingId?: string
}

/** What a batch read of its section's waiting list. */
export interface WaitlistRead {
  /** waiting entries that may fit, in position order: the first `limit` of them */
  waiting: StoredEntry[]
  /** false when there may be more waiting entries than were read */
  complete: boolean
  /** the entries the batch names (leaving ones) and those of its joining users still waiting or offered */
  named: StoredEntry[]
  /** the highest position the section's list has given (0: none) */
  lastPosition: number
}

/** Waiting or offered: the entry a user joining again is answered with. */
export const isActive = (status: WaitStatus): boolean => status === 'waiting' || status === 'offered'

/** What an offer's hold becoming `to` makes of its entry. */
const AFTER_OFFER: Partial<Record<BookingStatus, WaitStatus>> = { confirmed: 'confirmed', expired: 'lapsed', cancelled: 'left' }
export const entryAfterOffer = (to: BookingStatus): WaitStatus | undefined => AFTER_OFFER[to]

/** Strips storage-only fields so an entry can be answered. */
export function publicEntry (entry: StoredEntry): WaitEntry {
  const { eventOwner: _o, ...rest } = entry
  return rest
}

/** How many waiting entries a batch reads first: enough for the seats it may offer, and some the cap may skip. */
export const waitlistReadLimit = (seats: number): number => seats + 32

/** An offer's length when neither the event nor WAITLIST_OFFER_SECONDS sets one. */
export const DEFAULT_OFFER_SECONDS = 3600
