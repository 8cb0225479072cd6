/**
 * Who may do what: every decision about a principal and the data it touches,
 * in one place. A booking the principal may not see is reported as not found
 * by the caller, so ids reveal nothing.
 */
import type { StoredBooking } from './allocation.ts'
import { hasRole, type Principal } from './principal.ts'
import { ForbiddenError, InvalidInputError, type DomainError } from './errors.ts'

export function assertMayCreateEvents (actor: Principal): void {
  if (!hasRole(actor, 'organizer', 'admin')) throw new ForbiddenError('Only organizers and admins create events')
}

/** Its owner and admins manage an event (change it, its sections, its status). */
export function mayManageEvent (actor: Principal, owner: string): boolean {
  return hasRole(actor, 'admin') || (hasRole(actor, 'organizer') && owner !== '' && owner === actor.sub)
}

/** A draft is seen only by who manages it; every other status by anyone (no token sent: nobody, with no role). */
export function maySeeEvent (actor: Principal, event: { status: string, owner: string }): boolean {
  return event.status !== 'draft' || mayManageEvent(actor, event.owner)
}

/** The drafts a principal sees in a list of events. */
export function draftsSeenBy (actor: Principal): 'none' | 'all' | { owner: string } {
  if (hasRole(actor, 'admin')) return 'all'
  return hasRole(actor, 'organizer') ? { owner: actor.sub } : 'none'
}

/**
 * The userId a booking request books for: a customer books as itself (userId
 * left out or its own `sub`), a service or an admin on behalf of the userId it
 * names. A refusal is returned, not thrown: the booking path rejects without
 * unwinding an exception.
 */
export function bookingUser (actor: Principal, userId: string | undefined): string | DomainError {
  if (hasRole(actor, 'service', 'admin')) {
    return userId ?? new InvalidInputError('userId', 'body.userId is required when booking on behalf of a user')
  }
  if (!hasRole(actor, 'customer')) return new ForbiddenError('Only customers, services and admins book seats')
  if (userId !== undefined && userId !== actor.sub) return new ForbiddenError('A customer books as itself: userId must be left out or be the token\'s sub')
  return actor.sub
}

/** The part of all bookings a principal may list, as filters; null when it may list none. */
export function bookingScope (actor: Principal): { userId?: string, eventOwner?: string } | null {
  if (hasRole(actor, 'service', 'admin')) return {}
  if (hasRole(actor, 'organizer')) return { eventOwner: actor.sub }
  if (hasRole(actor, 'customer')) return { userId: actor.sub }
  return null
}

/** The parties of a booking access depends on: its user and its event's organizer (unknown: none is granted as organizer). */
export type Parties = Pick<StoredBooking, 'userId' | 'eventOwner'>

/** Its owner, its event's organizer, a service, an admin. */
export function maySeeBooking (actor: Principal, booking: Parties): boolean {
  if (hasRole(actor, 'service', 'admin')) return true
  if (hasRole(actor, 'organizer') && booking.eventOwner === actor.sub) return true
  return hasRole(actor, 'customer') && booking.userId === actor.sub
}

/**
 * What a principal may do to a booking it names, decided once the booking is
 * read in its section's batch: act on it, be refused (it may see it but not
 * do this), or not know of it (answered as not found).
 */
export type BookingAccess = 'granted' | 'forbidden' | 'hidden'

/** Whose entries of an event's waiting list a principal lists: every one (its organizer, services, admins), or its own. */
export function waitlistScope (actor: Principal, eventOwner: string): { userId?: string } {
  if (hasRole(actor, 'service', 'admin') || (hasRole(actor, 'organizer') && eventOwner !== '' && eventOwner === actor.sub)) return {}
  return { userId: actor.sub }
}

/** Who may see a booking may cancel it; who may see a waiting-list entry may take it off the list. */
export function cancelAccess (actor: Principal, booking: Parties): BookingAccess {
  return maySeeBooking(actor, booking) ? 'granted' : 'hidden'
}

/** Its owner, a service, an admin: who pays for a hold confirms it; the event's organizer sees it but does not. */
export function confirmAccess (actor: Principal, booking: Parties): BookingAccess {
  if (!maySeeBooking(actor, booking)) return 'hidden'
  return hasRole(actor, 'service', 'admin') || (hasRole(actor, 'customer') && booking.userId === actor.sub) ? 'granted' : 'forbidden'
}

/** An Idempotency-Key belongs to the principal that sent it: the same key from two principals is two requests. */
export function scopedIdempotencyKey (actor: Principal, key: string): string {
  // length-prefixed, so no pair of (sub, key) can spell another's
  return actor.sub === '' ? key : `${actor.sub.length}:${actor.sub}:${key}`
}

/** The part of the change feed a principal may read: a service's and an admin's all of it, an organizer's its events'; null: none. */
export function changeScope (actor: Principal): { owner?: string } | null {
  if (hasRole(actor, 'service', 'admin')) return {}
  if (hasRole(actor, 'organizer')) return { owner: actor.sub }
  return null
}

/** Whose events' changes a webhook made by the principal gets: an admin's every event's (''), an organizer's its own; null: it may make none. */
export function webhookOwner (actor: Principal): string | null {
  if (hasRole(actor, 'admin')) return ''
  return hasRole(actor, 'organizer') ? actor.sub : null
}

/** An admin sees every webhook endpoint, an organizer its own. */
export function maySeeWebhook (actor: Principal, endpoint: { owner: string }): boolean {
  return hasRole(actor, 'admin') || (hasRole(actor, 'organizer') && endpoint.owner === actor.sub)
}
