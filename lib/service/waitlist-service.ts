/**
 * The waiting list as the routes call it, always with the principal asking
 * (lib/domain/access.ts). Joining and leaving are decided by the section's
 * batch (lib/service/booking-service.ts), where its seats are: a user joins
 * only when the section cannot serve it, and seats coming back are offered in
 * the same batch (lib/domain/section-decision.ts). Lists read the store.
 */
import { bookingUser, maySeeBooking, maySeeEvent, waitlistScope } from '../domain/access.ts'
import type { Principal } from '../domain/principal.ts'
import { BusyError, NotFoundError, SeatsAvailableError } from '../domain/errors.ts'
import { publicEntry, type WaitEntry } from '../domain/waitlist.ts'
import { MAX_PAGE_SIZE } from '../api/schemas.ts'
import type { WaitlistJoin, WaitlistQueryAsk } from '../api/waitlist-schemas.ts'
import type { OpResult, SectionOp, SectionRef } from '../domain/section-ops.ts'
import type { Store } from '../store/store.ts'
import { sectionRefusal, type BookingService } from './booking-service.ts'

export interface WaitlistServiceOptions {
  store: Store
  bookings: Pick<BookingService, 'submit'>
  /** how long a request may take before the store's answer is given up on (ms) */
  answerWithinMs: number
}

/** A leave that found its entry offered since it read it reads it again, at most this often. */
const LEAVE_TRIES = 3

export interface JoinResult {
  entry: WaitEntry
  /** false: the user's entry still waiting or offered, answered again */
  created: boolean
}

export function createWaitlistService (options: WaitlistServiceOptions) {
  const { store, bookings, answerWithinMs } = options
  const deadline = (): number => Date.now() + answerWithinMs

  /** A join refused: seats to book instead, or what refuses a booking too. */
  function refused (result: OpResult, section: SectionRef, qty: number): never {
    if (result.kind === 'seats_available') throw new SeatsAvailableError(result.remaining, qty)
    throw sectionRefusal(result, section, qty)
  }

  return {
    /** A place on the section's list for the user the principal may book for, when the section cannot serve qty now. */
    async join (actor: Principal, eventId: string, ask: WaitlistJoin): Promise<JoinResult> {
      const userId = bookingUser(actor, ask.userId)
      if (typeof userId !== 'string') throw userId
      const section = { eventId, sectionId: ask.sectionId }
      const result = await bookings.submit(section, { kind: 'join', userId, qty: ask.qty })
      if (result.kind !== 'joined') refused(result, section, ask.qty)
      return { entry: result.entry, created: result.created }
    },

    /** Leaves the list (an offered entry declines: its hold is released, its seats offered on). Leaving again changes nothing. */
    async leave (actor: Principal, id: string): Promise<WaitEntry> {
      for (let tries = 0; tries < LEAVE_TRIES; tries++) {
        const entry = await store.getWaitEntry(id, deadline())
        // its user, its event's organizer, a service, an admin; to anyone else it does not exist
        if (entry === null || !maySeeBooking(actor, entry)) throw new NotFoundError('Waitlist entry', id)
        const op: SectionOp = entry.bookingId === undefined ? { kind: 'leave', entryId: id } : { kind: 'leave', entryId: id, bookingId: entry.bookingId }
        const result = await bookings.submit({ eventId: entry.eventId, sectionId: entry.sectionId }, op)
        if (result.kind === 'left') return result.entry
        if (result.kind !== 'stale') throw new NotFoundError('Waitlist entry', id)
      }
      // offered again and again between its read and its batch: as a section that stayed busy
      throw new BusyError(1, 'the entry kept changing while it was left')
    },

    /** An event's entries in order: all of them to its organizer, services and admins; its own to anyone else. */
    async list (actor: Principal, eventId: string, ask: WaitlistQueryAsk): Promise<{ items: WaitEntry[], nextCursor: string | null }> {
      const event = await store.getEvent(eventId, deadline())
      if (event === null || !maySeeEvent(actor, event)) throw new NotFoundError('Event', eventId)
      const scope = waitlistScope(actor, event.owner)
      const limit = ask.limit ?? MAX_PAGE_SIZE
      const after = ask.cursor === undefined ? undefined : parseCursor(ask.cursor)
      const entries = await store.listWaitEntries({
        eventId,
        ...(ask.sectionId === undefined ? {} : { sectionId: ask.sectionId }),
        ...scope,
        ...(after === undefined ? {} : { after }),
        limit
      }, deadline())
      const last = entries.at(-1)
      return { items: entries.map(publicEntry), nextCursor: entries.length < limit || last === undefined ? null : `${last.sectionId}.${last.position}` }
    }
  }
}

function parseCursor (cursor: string): { sectionId: string, position: number } {
  const [sectionId, position] = cursor.split('.')
  return { sectionId, position: Number(position) }
}

export type WaitlistService = ReturnType<typeof createWaitlistService>
