/**
 * The holds this store wrote, as written: a hold's usual next step, its
 * confirm or its release, is then decided without reading it (a round trip
 * and a statement per batch of confirms). Only a booking still held is kept,
 * and whatever a batch decides for a held booking is a write guarded by its
 * status (a confirm also by its expiresAt, on the database's clock) or a
 * refusal on what a booking never changes (its user, its event's organizer).
 * So a hold changed since by another writer (confirmed, released or expired
 * elsewhere) costs a retry that reads it, never a wrong answer. A booking
 * this store changes is forgotten before its write is sent.
 */
import type { StoredBooking } from '../../domain/allocation.ts'
import { LRUCache } from 'lru-cache'

/** A hold kept, emptied when forgotten (lru-cache's delete of its last entry clears all its slots: max of them). */
interface Kept { booking?: StoredBooking }

export function createHeldBookings (max: number) {
  const held = new LRUCache<string, Kept>({ max })
  return {
    /** A batch's new bookings, once written: its holds are kept. */
    written (inserts: readonly StoredBooking[]): void {
      for (const booking of inserts) if (booking.status === 'held') held.set(booking._id, { booking })
    },
    /** The hold as this store wrote it, if it is one of those kept and this store has not changed it since. */
    recall: (id: string): StoredBooking | undefined => held.get(id)?.booking,
    /** Bookings a write is about to change: whatever it does, they are no longer as written. */
    forget (ids: Iterable<string>): void {
      for (const id of ids) {
        const kept = held.peek(id)
        if (kept !== undefined) kept.booking = undefined
      }
    }
  }
}

export type HeldBookings = ReturnType<typeof createHeldBookings>
