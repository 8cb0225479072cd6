/**
 * Where a booking lives and whose it is: fields that never change once it is
 * made, so a confirm or a cancel for a booking this instance has seen goes to
 * its section's batch without reading it first (the batch reads it anyway,
 * under the section's lock). Bounded: the oldest are forgotten first.
 */
import type { StoredBooking } from './allocation.ts'
import { createRecentMap } from './recent-map.ts'

export type BookingRoute = Pick<StoredBooking, 'eventId' | 'sectionId' | 'userId'> & { eventOwner?: string }

export const createBookingRoutes = (max: number) => createRecentMap<BookingRoute>(max)
