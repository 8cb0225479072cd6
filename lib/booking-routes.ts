/**
 * Where a booking lives and whose it is: fields that never change once it is
 * made, so a confirm or a cancel for a booking this instance has seen goes to
 * its section's batch without reading it first (the batch reads it anyway,
 * under the section's lock). Bounded: the oldest are forgotten first.
 */
import type { StoredBooking } from './allocation.ts'

export type BookingRoute = Pick<StoredBooking, 'eventId' | 'sectionId' | 'userId'> & { eventOwner?: string }

export function createBookingRoutes (max: number) {
  const routes = new Map<string, BookingRoute>()
  return {
    get: (id: string): BookingRoute | undefined => routes.get(id),
    set (id: string, route: BookingRoute): void {
      routes.delete(id)
      routes.set(id, route)
      // a Map iterates in insertion order: the first key is the oldest
      if (routes.size > max) routes.delete(routes.keys().next().value as string)
    }
  }
}
